"""What the deploy decides from the host's state: pure, on captured command output."""

from __future__ import annotations

import pytest

from relayops.compile.files import (
    Daemon,
    Directory,
    HostConfig,
    ManagedFile,
    MapCommand,
    SecretFile,
)
from relayops.deploy.facts import parse_host_facts, parse_statuses
from relayops.deploy.ordering import path_position
from relayops.deploy.state import (
    Kind,
    PathState,
    Wanted,
    directory_changes,
    file_changes,
    maps_to_index,
    parse_states,
    reloads,
)

MAIN_CF = ManagedFile("/etc/postfix/main.cf", b"x = 1\n", 0o644, "root", "root", Daemon.POSTFIX)
SENDERS = ManagedFile(
    "/etc/postfix/sender_logins", b"@a.example a\n", 0o644, "root", "root", Daemon.POSTFIX,
    MapCommand.POSTMAP,
)  # fmt: skip
USERS = ManagedFile("/etc/dovecot/relayops-users", b"a:{X}y\n", 0o640, "root", "dovecot", None)
KEY = SecretFile(
    "/etc/opendkim/keys/a.example/s1.private", "secrets/dkim/a.example.s1.key.age", 0o600,
    "opendkim", "opendkim", Daemon.OPENDKIM,
)  # fmt: skip
CONFIG = HostConfig(
    "relay1", "relay1.example.net", (MAIN_CF, SENDERS, USERS), (KEY,),
    (Directory("/etc/opendkim/keys", 0o750, "opendkim", "opendkim"),),
)  # fmt: skip


def test_parse_states_reads_stat_then_sha1sum_lines() -> None:
    output = [
        "regular file|644|root|root|/etc/postfix/main.cf",
        "directory|750|opendkim|opendkim|/etc/opendkim/keys",
        "regular empty file|600|root|root|/etc/empty",
        f"{Wanted('p', MAIN_CF.content, 0, 'u', 'g').sha1}  /etc/postfix/main.cf",
    ]
    states = parse_states(output)
    assert states["/etc/postfix/main.cf"] == PathState(
        Kind.FILE, 0o644, "root", "root", Wanted("p", MAIN_CF.content, 0, "u", "g").sha1
    )
    assert states["/etc/opendkim/keys"].kind is Kind.DIRECTORY
    assert states["/etc/empty"].kind is Kind.FILE and states["/etc/empty"].sha1 is None


def _state(item: Wanted, **changes: object) -> PathState:
    values: dict[str, object] = {
        "kind": Kind.FILE, "mode": item.mode, "user": item.user, "group": item.group,
        "sha1": item.sha1,
    }  # fmt: skip
    values.update(changes)
    return PathState(**values)  # type: ignore[arg-type]


def test_file_changes_tell_content_from_owner_and_mode() -> None:
    same = Wanted("/a", b"1", 0o644, "root", "root")
    content = Wanted("/b", b"2", 0o644, "root", "root")
    owner = Wanted("/c", b"3", 0o640, "root", "dovecot")
    missing = Wanted("/d", b"4", 0o600, "root", "root")
    states = {
        "/a": _state(same),
        "/b": _state(content, sha1="0" * 40),
        "/c": _state(owner, group="root", mode=0o644),
    }
    changes = {
        c.wanted.path: (c.content, c.owner, c.mode)
        for c in file_changes([same, content, owner, missing], states)
    }
    assert changes == {
        "/b": (True, False, False),
        "/c": (False, True, True),
        "/d": (True, True, True),
    }


def test_a_directory_in_place_of_a_file_is_rewritten() -> None:
    wanted = Wanted("/a", b"1", 0o644, "root", "root")
    states = {"/a": PathState(Kind.DIRECTORY, 0o755, "root", "root")}
    assert [c.content for c in file_changes([wanted], states)] == [True]


def test_directory_changes() -> None:
    keys = CONFIG.directories[0]
    assert directory_changes([keys], {}) == [keys]
    right = PathState(Kind.DIRECTORY, 0o750, "opendkim", "opendkim")
    assert directory_changes([keys], {keys.path: right}) == []
    loose = PathState(Kind.DIRECTORY, 0o755, "opendkim", "opendkim")
    assert directory_changes([keys], {keys.path: loose}) == [keys]


def test_maps_indexed_when_changed_or_their_index_is_missing() -> None:
    db = {"/etc/postfix/sender_logins.db": PathState(Kind.FILE, 0o644, "root", "root", "x")}
    assert maps_to_index(CONFIG, set(), db) == []
    assert maps_to_index(CONFIG, {SENDERS.path}, db) == [(MapCommand.POSTMAP, SENDERS.path)]
    assert maps_to_index(CONFIG, set(), {}) == [(MapCommand.POSTMAP, SENDERS.path)]


def test_reloads_follow_the_changed_files_only() -> None:
    assert reloads(CONFIG, set()) == set()
    assert reloads(CONFIG, {USERS.path}) == set()  # Dovecot rereads its passwd-file itself
    assert reloads(CONFIG, {MAIN_CF.path, KEY.path}) == {"postfix", "opendkim"}
    extra = {"/etc/relayops/tls/fullchain.pem": ("postfix", "dovecot")}
    assert reloads(CONFIG, {"/etc/relayops/tls/fullchain.pem"}, extra) == {"postfix", "dovecot"}


def test_host_facts_and_statuses_parse() -> None:
    facts = parse_host_facts(
        ["systemd=no", "python=3.11.2", "users=root,postfix", "marker=",
         "redis_include=yes"]
    )  # fmt: skip
    assert (facts.systemd, facts.python, facts.marker, facts.redis_include) == (
        False, "3.11.2", None, True,
    )  # fmt: skip
    assert facts.accounts == {"root", "postfix"}
    assert parse_statuses(["postfix=0", "dovecot=3", "opendkim=4", "junk"]) == {
        "postfix": True, "dovecot": False, "opendkim": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("parent", "child"),
    [
        ("/etc/opendkim/keys", "/etc/opendkim/keys/a.example"),
        ("/etc/relayops", "/etc/relayops/tls"),
    ],
)
def test_parents_are_positioned_before_their_children(parent: str, child: str) -> None:
    assert path_position(parent) < path_position(child)


def test_positions_are_stable() -> None:
    assert path_position("/etc/postfix/main.cf") == path_position("/etc/postfix/main.cf")
