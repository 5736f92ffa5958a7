"""A sending IP leaves the host: its Postfix output instance is stopped and removed, or held."""

from __future__ import annotations

from relayops.compile.managed import Entry, EntryKind, Manifest, manifest
from relayops.deploy.instance_removal import (
    InstanceRemoval,
    count_command,
    hold_back,
    instance_of,
    parse_count,
    removed_instances,
)
from relayops.deploy.removal import Removal

GONE = "postfix-ip-dedicated-2"
ENTRIES = [
    Entry(f"/etc/{GONE}", EntryKind.DIRECTORY),
    Entry(f"/etc/{GONE}/main.cf", EntryKind.FILE),
    Entry(f"/etc/{GONE}/master.cf", EntryKind.FILE),
    Entry(f"/var/lib/{GONE}", EntryKind.DIRECTORY),
    Entry(f"/var/spool/{GONE}", EntryKind.DIRECTORY),
    Entry("/var/vmail/old-login", EntryKind.MAILBOX, "old"),
]


def test_paths_name_their_instance() -> None:
    assert instance_of(f"/var/spool/{GONE}/deferred/A") == GONE
    assert instance_of(f"/etc/{GONE}") == GONE
    assert instance_of("/etc/postfix/main.cf") is None
    assert instance_of("/etc/postfixed/x") is None
    assert removed_instances(ENTRIES) == [GONE]
    # Its directory alone (an older deploy's leftovers) is not an instance being removed.
    assert removed_instances([Entry(f"/var/spool/{GONE}", EntryKind.DIRECTORY)]) == []


def test_queue_is_counted_on_disk() -> None:
    assert count_command(GONE) == (
        "echo relayops-queued=$(find /var/spool/postfix-ip-dedicated-2/maildrop "
        "/var/spool/postfix-ip-dedicated-2/incoming /var/spool/postfix-ip-dedicated-2/active "
        "/var/spool/postfix-ip-dedicated-2/deferred /var/spool/postfix-ip-dedicated-2/hold "
        "-type f 2>/dev/null | wc -l)"
    )
    assert parse_count(["relayops-queued=0"]) == 0
    assert parse_count(["relayops-queued=12"]) == 12
    assert parse_count(["relayops-queued="]) is None
    assert parse_count([]) is None


def test_an_empty_instance_is_stopped_then_deleted() -> None:
    removal = Removal(list(ENTRIES), [], Manifest())
    kept, decisions = hold_back(removal, {GONE: 0}, {"old": ("old.example",)})
    assert kept.remove == ENTRIES
    assert decisions == [InstanceRemoval(GONE, 0)]
    assert decisions[0].commands() == [
        "if postfix -c /etc/postfix-ip-dedicated-2 status >/dev/null 2>&1; then "
        "postfix -c /etc/postfix-ip-dedicated-2 stop; fi",
        "rm -rf -- /var/spool/postfix-ip-dedicated-2 /var/lib/postfix-ip-dedicated-2",
    ]


def test_an_instance_with_mail_keeps_running_and_is_recorded_again() -> None:
    wanted = manifest([Entry("/etc/postfix/main.cf", EntryKind.FILE)], {})
    removal = Removal(list(ENTRIES), [], wanted)
    for queued in (3, None):
        kept, decisions = hold_back(removal, {GONE: queued}, {"old": ("old.example",)})
        assert kept.remove == [ENTRIES[-1]]  # the mailbox is not the instance's
        assert kept.manifest.paths() == {"/etc/postfix/main.cf", *(e.path for e in ENTRIES[:5])}
        assert decisions[0].commands() == ["postfix -c /etc/postfix-ip-dedicated-2 flush || true"]
    assert InstanceRemoval(GONE, 3).line() == (
        "removal deferred: Postfix instance postfix-ip-dedicated-2 (3 message(s) still "
        "queued; flushed, kept running)"
    )
    assert (
        InstanceRemoval(GONE, None)
        .line()
        .endswith("(its queue could not be read; flushed, kept running)")
    )


def test_the_queue_count_is_a_pyinfra_fact() -> None:
    # pyinfra refuses a fact argument named like a global one (`name`) at import.
    from relayops.deploy.removal_steps import InstanceQueueCount

    assert InstanceQueueCount().command(instance=GONE) == count_command(GONE)
    assert InstanceQueueCount().process(["relayops-queued=2"]) == ["relayops-queued=2"]
