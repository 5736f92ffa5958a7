"""What a deploy removes, defers and records: tables over (previous manifest, wanted, queue)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.compile.managed import Entry, EntryKind, Manifest, manifest
from relayops.deploy.queue import Queued
from relayops.deploy.removal import (
    decide,
    deferred_in,
    needs_queue,
    removal_position,
    remove_command,
)
from relayops.deploy.report import summary

F, D, M = EntryKind.FILE, EntryKind.DIRECTORY, EntryKind.MAILBOX
MAIN_CF = Entry("/etc/postfix/main.cf", F)
OLD_MAP = Entry("/etc/postfix/old_map", F)
OLD_MAP_DB = Entry("/etc/postfix/old_map.db", F)
STARK_KEY = Entry("/etc/opendkim/keys/stark.example/s1.private", F, "stark")
STARK_KEY_DIR = Entry("/etc/opendkim/keys/stark.example", D, "stark")
STARK_BOX = Entry("/var/vmail/stark", M, "stark")
ACME_KEY = Entry("/etc/opendkim/keys/acme.example/rly2026.private", F, "acme")
ACME_BOX = Entry("/var/vmail/acme-app", M, "acme")
KEY_DIR = Entry("/etc/opendkim/keys", D)
DOMAINS = {"stark": ["stark.example", "xn--bcher-soylent-wob.example"], "acme": ["acme.example"]}

BEFORE = manifest(
    [MAIN_CF, OLD_MAP, OLD_MAP_DB, KEY_DIR, STARK_KEY, STARK_KEY_DIR, STARK_BOX, ACME_KEY,
     ACME_BOX],
    DOMAINS,
)  # fmt: skip
STARK_GONE = manifest([MAIN_CF, KEY_DIR, ACME_KEY, ACME_BOX], DOMAINS)
STARK_ORDER = [STARK_KEY.path, STARK_BOX.path, STARK_KEY_DIR.path]


def q(sender: str, queue: str = "deferred") -> Queued:
    return Queued("4F1A2B", queue, sender)


@dataclass(frozen=True)
class Case:
    name: str
    previous: Manifest | None
    wanted: Manifest
    queue: list[Queued] | None
    removed: list[str]
    deferred: list[tuple[str, int | None]]


CASES = [
    Case("first deploy: no manifest yet, nothing removed", None, STARK_GONE, [], [], []),
    Case("nothing changed", STARK_GONE, STARK_GONE, [], [], []),
    Case(
        "terminated, queue empty: files (deepest first), mailbox, then the key directory",
        BEFORE,
        STARK_GONE,
        [],
        [STARK_KEY.path, OLD_MAP.path, OLD_MAP_DB.path, STARK_BOX.path, STARK_KEY_DIR.path],
        [],
    ),
    Case(
        "one held message from the customer: its data waits, the stale map does not",
        BEFORE,
        STARK_GONE,
        [q("billing@stark.example", "hold")],
        [OLD_MAP.path, OLD_MAP_DB.path],
        [(STARK_KEY.path, 1), (STARK_BOX.path, 1), (STARK_KEY_DIR.path, 1)],
    ),
    Case(
        "sender domain compared case-insensitively and in its ASCII form",
        BEFORE,
        STARK_GONE,
        [q("A@STARK.example"), q("x@bücher-soylent.example")],
        [OLD_MAP.path, OLD_MAP_DB.path],
        [(STARK_KEY.path, 2), (STARK_BOX.path, 2), (STARK_KEY_DIR.path, 2)],
    ),
    Case(
        "other customers' mail, bounces and a look-alike subdomain do not hold it back",
        BEFORE,
        STARK_GONE,
        [q("a@acme.example"), q(""), q("x@mail.stark.example"), q("x@stark.example.org")],
        [STARK_KEY.path, OLD_MAP.path, OLD_MAP_DB.path, STARK_BOX.path, STARK_KEY_DIR.path],
        [],
    ),
    Case(
        "queue unreadable: every customer's data waits, files without an owner go",
        BEFORE,
        STARK_GONE,
        None,
        [OLD_MAP.path, OLD_MAP_DB.path],
        [(STARK_KEY.path, None), (STARK_BOX.path, None), (STARK_KEY_DIR.path, None)],
    ),
    Case(
        "re-activated before the deferred removal ran: wanted again, nothing removed",
        manifest([*STARK_GONE.entries, STARK_KEY, STARK_BOX, STARK_KEY_DIR], DOMAINS),
        BEFORE,
        [],
        [],
        [],
    ),
    Case(
        "suspended: keys leave (the repository keeps them), the mailbox stays",
        BEFORE,
        manifest([e for e in BEFORE.entries if e.kind is not F or e != STARK_KEY], DOMAINS),
        [q("x@acme.example")],
        [STARK_KEY.path],
        [],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_decide(case: Case) -> None:
    removal = decide(case.previous, case.wanted, case.queue)
    assert [e.path for e in removal.remove] == case.removed
    assert [(d.entry.path, d.queued) for d in removal.deferred] == case.deferred
    deferred = {d.entry.path for d in removal.deferred}
    # Afterwards the host's manifest lists what is wanted plus what still waits.
    assert removal.manifest.paths() == case.wanted.paths() | deferred
    if deferred:
        assert removal.manifest.customers["stark"] == tuple(sorted(DOMAINS["stark"]))


def test_deferred_reasons_are_exact() -> None:
    held = decide(BEFORE, STARK_GONE, [q("a@stark.example", "hold")]).deferred[0]
    assert held.reason() == "1 message(s) of stark still queued"
    unknown = decide(BEFORE, STARK_GONE, None).deferred[0]
    assert unknown.reason() == "the queue could not be read, stark's mail may still be there"


def test_a_later_deploy_removes_what_was_deferred() -> None:
    first = decide(BEFORE, STARK_GONE, [q("a@stark.example", "hold")])
    second = decide(first.manifest, STARK_GONE, [])
    assert [e.path for e in second.remove] == STARK_ORDER
    assert second.deferred == []
    assert second.manifest == STARK_GONE


def test_queue_read_only_when_a_customer_s_data_would_go() -> None:
    assert needs_queue(None, STARK_GONE) is False
    assert needs_queue(STARK_GONE, STARK_GONE) is False
    assert needs_queue(manifest([MAIN_CF, OLD_MAP], {}), manifest([MAIN_CF], {})) is False
    assert needs_queue(BEFORE, STARK_GONE) is True


@pytest.mark.parametrize(
    ("entry", "command"),
    [
        (STARK_KEY, "if [ ! -d /etc/opendkim/keys/stark.example/s1.private ]; then "
                    "rm -f -- /etc/opendkim/keys/stark.example/s1.private; fi"),
        (STARK_KEY_DIR, "if [ -d /etc/opendkim/keys/stark.example ]; then "
                        "rmdir --ignore-fail-on-non-empty -- /etc/opendkim/keys/stark.example; fi"),
        (STARK_BOX, "rm -rf -- /var/vmail/stark"),
        (Entry("/etc/a b", F), "if [ ! -d '/etc/a b' ]; then rm -f -- '/etc/a b'; fi"),
    ],
)  # fmt: skip
def test_remove_commands(entry: Entry, command: str) -> None:
    assert remove_command(entry) == command


def test_positions_follow_removal_order_on_every_host() -> None:
    removal = decide(BEFORE, STARK_GONE, [])
    positions = [removal_position(e) for e in removal.remove]
    assert positions == sorted(positions)


_paths = st.sampled_from(
    [e.path for e in BEFORE.entries] + ["/etc/other", "/var/vmail/other", "/etc/x/y"]
)
_entries = st.builds(
    Entry, _paths, st.sampled_from(list(EntryKind)), st.sampled_from([None, "stark", "acme"])
)
_manifests = st.builds(lambda es: manifest(es, DOMAINS), st.lists(_entries, max_size=8))
_queue = st.none() | st.lists(
    st.builds(q, st.sampled_from(["", "a@stark.example", "b@acme.example", "c@x.example"])),
    max_size=3,
)


@given(previous=st.none() | _manifests, wanted=_manifests, queue=_queue)
def test_only_recorded_and_unwanted_paths_are_ever_removed(
    previous: Manifest | None, wanted: Manifest, queue: list[Queued] | None
) -> None:
    removal = decide(previous, wanted, queue)
    recorded = previous.paths() if previous is not None else set()
    removed = {e.path for e in removal.remove}
    deferred = {d.entry.path for d in removal.deferred}
    assert removed <= recorded - wanted.paths()
    assert deferred <= recorded - wanted.paths()
    assert not removed & deferred
    assert removal.manifest.paths() == wanted.paths() | deferred


def test_deferred_lines_are_read_back_for_json() -> None:
    removal = decide(BEFORE, STARK_GONE, [q("a@stark.example", "hold")])
    output = "\n".join(f"    [relay1.relay.example.net] {d.line()}" for d in removal.deferred)
    output += "\n--> Starting operation: Remove file /etc/postfix/old_map\n"
    assert summary(output)["deferred"] == {
        "relay1.relay.example.net": [
            "file /etc/opendkim/keys/stark.example/s1.private (1 message(s) of stark still queued)",
            "mailbox /var/vmail/stark (1 message(s) of stark still queued)",
            "directory /etc/opendkim/keys/stark.example (1 message(s) of stark still queued)",
        ]
    }
    assert deferred_in("--> Results:\n") == {}
