"""Following the relays' instance logs: new files, rotation, positions, garbage, the service.

The output-instance lines are Postfix 3.7's as an output instance (compile/instances.py)
writes them to its maillog_file: the program tag carries the instance's syslog_name (and
the class transport's), the smtpd line has no SASL login (the submission instance handed
the message over loopback), and the queue ID is the instance's own.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayops.feedback.follow import (
    LogFollower,
    Position,
    ReviewFile,
    expand,
    load_positions,
    save_positions,
)
from relayops.feedback.maillog import Tracker, failure_key, is_garbage
from relayops.feedback.model import Reason
from relayops.policyd.ledger_sqlite import SqliteLedger
from support.policyd import rules_data, write_rules
from support.processes import wait_found

INSTANCE = "postfix-ip-shared-us-1"
HANDED = (
    f"Dec  1 07:10:00 o1.relay1.lab {INSTANCE}/smtpd[1200]: 7Hh1Jk90: client=localhost[127.0.0.1]\n"
)
QUEUED = (
    f"Dec  1 07:10:00 o1.relay1.lab {INSTANCE}/qmgr[1201]: 7Hh1Jk90: "
    "from=<news@acme-mail.example>, size=2000, nrcpt=2 (queue active)\n"
)
BOUNCED = (
    f"Dec  1 07:10:01 o1.relay1.lab {INSTANCE}/isp-gmail/smtp[1202]: 7Hh1Jk90: "
    "to=<Gone@Receiver.example>, relay=mx.receiver.example[192.0.2.9]:25, delay=0.4, "
    "delays=0.1/0/0.2/0.1, dsn=5.1.1, status=bounced (host mx.receiver.example[192.0.2.9] "
    "said: 550 5.1.1 <gone@receiver.example>: Recipient address rejected: User unknown "
    "(in reply to RCPT TO command))\n"
)
BLOCKED = (
    f"Dec  1 07:10:01 o1.relay1.lab {INSTANCE}/smtp[1203]: 7Hh1Jk90: "
    "to=<someone@blocked.example>, relay=mx.blocked.example[192.0.2.10]:25, delay=0.4, "
    "delays=0.1/0/0.2/0.1, dsn=5.7.1, status=bounced (host mx.blocked.example[192.0.2.10] "
    "said: 550 5.7.1 Service unavailable; client [198.18.0.5] blocked using "
    "zen.spamhaus.org (in reply to RCPT TO command))\n"
)
GARBAGE = ["\x00\x01binary noise\n", "Dec  1 07:10:0\n", f"{BOUNCED[:120]} status=bounced (cut\n"]


def test_an_output_instance_refusal_is_the_sender_domains_customers() -> None:
    tracker = Tracker()
    found = [tracker.feed(line) for line in (HANDED, QUEUED, BOUNCED, BLOCKED)]
    assert found[:2] == [None, None]
    gone, blocked = found[2], found[3]
    assert gone is not None and blocked is not None
    assert (gone.queue_id, gone.login, gone.sender, gone.address, gone.status) == (
        "7Hh1Jk90", None, "news@acme-mail.example", "gone@receiver.example", "5.1.1",
    )  # fmt: skip
    assert (gone.reason, gone.hard, gone.digest) == (
        Reason.USER_UNKNOWN,
        True,
        failure_key("7Hh1Jk90", "gone@receiver.example"),
    )
    assert (blocked.reason, blocked.hard) == (Reason.REPUTATION, False)


def test_garbage_is_told_from_log_lines() -> None:
    assert [is_garbage(line) for line in GARBAGE] == [True, True, True]
    assert [is_garbage(line) for line in (HANDED, QUEUED, BOUNCED, BLOCKED, "\n")] == [False] * 5
    assert (
        is_garbage("2026-12-01T07:10:01.123456+00:00 relay1 postfix/qmgr[1]: ABCDEF123: x\n")
        is False
    )
    assert is_garbage(BOUNCED.replace("Gone", "G\udcffone")) is True  # not UTF-8


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=300) | st.sampled_from([HANDED, QUEUED, BOUNCED]), max_size=20))
def test_any_line_is_classified_and_read_without_raising(lines: list[str]) -> None:
    tracker = Tracker(max_tracked=3)
    prefix = f"Dec  1 07:10:01 o1 {INSTANCE}/isp-x/smtp[1]: 7Hh1Jk90: "
    for line in lines:
        for text in (line, prefix + line):
            is_garbage(text)
            failure = tracker.feed(text)
            if failure is not None:  # whatever it read is well-formed
                assert failure.address == failure.address.lower()
                assert failure.status[0] in "245" and failure.status.count(".") == 2
                assert not failure.hard or failure.status.startswith("5")
                assert failure.digest == failure_key(failure.queue_id, failure.address)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_garbage_or_read(data: bytes) -> None:
    line = data.decode("utf-8", "surrogateescape")
    if is_garbage(line):
        return  # the follower keeps it and feeds it nowhere
    Tracker().feed(line)


# ---- the follower, without sleeping -------------------------------------------------------


def _texts(follower: LogFollower) -> list[tuple[str, str]]:
    return [(current.path.name, line) for current, line in follower.poll()]


def test_new_files_appended_lines_and_a_partial_line(tmp_path: Path) -> None:
    first = tmp_path / "postfix-ip-a.log"
    first.write_text(HANDED + QUEUED[:40])  # the second line is being written
    follower = LogFollower([str(tmp_path / "postfix*.log")], {})
    assert _texts(follower) == [("postfix-ip-a.log", HANDED)]
    with first.open("a") as out:
        out.write(QUEUED[40:])
    second = tmp_path / "postfix-ip-b.log"  # a new instance, deployed meanwhile
    second.write_text(BLOCKED)
    assert _texts(follower) == [("postfix-ip-a.log", QUEUED), ("postfix-ip-b.log", BLOCKED)]
    assert _texts(follower) == []
    assert follower.positions == {
        str(first): Position(
            first.stat().st_ino,
            len((HANDED + QUEUED).encode()),
            (HANDED + QUEUED).encode()[:128].hex(),
        ),
        str(second): Position(
            second.stat().st_ino, len(BLOCKED.encode()), BLOCKED.encode()[:128].hex()
        ),
    }
    follower.close()


def test_rotation_reads_the_old_file_to_its_end_and_keeps_the_queue_ids(tmp_path: Path) -> None:
    log = tmp_path / "postfix-ip-a.log"
    log.write_text(HANDED)
    follower = LogFollower([str(log)], {})
    assert len(_texts(follower)) == 1
    with log.open("a") as out:
        out.write(QUEUED)  # written just before logrotate renames the file
    os.replace(log, tmp_path / "postfix-ip-a.log.1")
    log.write_text(BOUNCED)  # postlogd's new file
    got = follower.poll()
    assert [line for _, line in got] == [QUEUED, BOUNCED]
    tracker = got[1][0].tracker
    assert tracker is got[0][0].tracker  # the sender read before the rotation is known after
    tracker.feed(QUEUED)
    failure = tracker.feed(BOUNCED)
    assert failure is not None and failure.sender == "news@acme-mail.example"
    assert follower.positions[str(log)] == Position(
        log.stat().st_ino, len(BOUNCED.encode()), BOUNCED.encode()[:128].hex()
    )
    follower.close()


def test_a_truncated_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "postfix.log"
    log.write_text(HANDED + QUEUED)
    follower = LogFollower([str(log)], {})
    assert len(_texts(follower)) == 2
    log.write_text(BLOCKED)  # copytruncate, then a shorter line
    assert _texts(follower) == [("postfix.log", BLOCKED)]
    follower.close()


def test_a_restart_continues_where_it_stopped_with_the_senders_it_had_read(
    tmp_path: Path,
) -> None:
    log = tmp_path / "postfix-ip-a.log"
    log.write_text(HANDED + QUEUED)
    state = tmp_path / "positions.json"
    follower = LogFollower([str(log)], load_positions(state))
    assert len(_texts(follower)) == 2
    save_positions(state, follower.positions)
    follower.close()
    with log.open("a") as out:
        out.write(BOUNCED)
    again = LogFollower([str(log)], load_positions(state))
    got = again.poll()
    assert [line for _, line in got] == [BOUNCED]  # nothing read twice
    failure = got[0][0].tracker.feed(BOUNCED)
    assert failure is not None and failure.sender == "news@acme-mail.example"  # warmed
    again.close()
    # Another inode under the same name (rotated while stopped): read from its start.
    log.unlink()
    log.write_text(BLOCKED)
    third = LogFollower([str(log)], load_positions(state))
    assert _texts(third) == [("postfix-ip-a.log", BLOCKED)]
    third.close()


def test_a_malformed_state_file_is_read_as_empty(tmp_path: Path) -> None:
    state = tmp_path / "positions.json"
    for text in ("{not json", '{"x": 3}', "[]", '{"x": {"inode": "a", "offset": 1}}'):
        state.write_text(text)
        assert load_positions(state) == {}
    assert expand([str(tmp_path / "none*.log"), str(tmp_path / "missing.log")]) == []


def test_the_review_file_keeps_lines_and_stays_bounded(tmp_path: Path) -> None:
    review = ReviewFile(tmp_path / "unparsed.jsonl", max_bytes=300)
    for line in GARBAGE * 3:
        review.keep("/var/log/postfix.log", line, "not a log line Postfix writes")
    kept = [
        json.loads(line)
        for path in (tmp_path / "unparsed.jsonl.1", tmp_path / "unparsed.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert review.kept == 9
    assert kept[-1] == {
        "file": "/var/log/postfix.log",
        "why": "not a log line Postfix writes",
        "line": GARBAGE[2].rstrip("\n"),
    }
    assert (tmp_path / "unparsed.jsonl").stat().st_size < 600


# ---- the service: `relayops feedback maillog PATTERN --follow` ------------------------------


_wait = functools.partial(wait_found, timeout=20, every=0.2)


def _suppressed(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    ledger = SqliteLedger(db)
    try:
        return [(s.customer, s.address) for s in ledger.suppressions(None, now=0)]
    finally:
        ledger.close()


def test_the_follower_records_refusals_keeps_garbage_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / f"{INSTANCE}.log").write_text(HANDED + QUEUED)
    rules = write_rules(tmp_path / "policy.json", rules_data())
    db = tmp_path / "policyd.sqlite"
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "relayops", "feedback", "maillog", str(logs / "postfix*.log"),
           "--follow", "--state-dir", str(state), "--store", f"sqlite:{db}",
           "--rules", str(rules)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait("the first positions", lambda: (state / "positions.json").exists())
        with (logs / f"{INSTANCE}.log").open("a") as out:
            out.writelines(GARBAGE)
            out.write(BOUNCED)
        assert _wait("the suppression", lambda: _suppressed(db)) == [
            ("acme", "gone@receiver.example")
        ]
        # A new instance's log, with a reputation block: counted, nothing suppressed.
        (logs / "postfix-ip-dedicated-1.log").write_text(QUEUED + BLOCKED)
        _wait("the block", lambda: _blocks(db) == 1)
        assert _suppressed(db) == [("acme", "gone@receiver.example")]
    finally:
        proc.send_signal(signal.SIGTERM)
        out_text, err_text = proc.communicate(timeout=20)
    assert proc.returncode == 0, err_text
    assert [line.split(" reason=")[0] for line in out_text.splitlines()] == [
        "queue_id=7Hh1Jk90 customer=acme address=gone@receiver.example status=5.1.1",
        "queue_id=7Hh1Jk90 customer=acme address=someone@blocked.example status=5.7.1",
    ]
    kept = [json.loads(line) for line in (state / "unparsed.jsonl").read_text().splitlines()]
    assert [k["line"] for k in kept] == [g.rstrip("\n") for g in GARBAGE]
    assert err_text.count("event=maillog_garbage") == 3
    assert "Traceback" not in err_text
    positions = json.loads((state / "positions.json").read_text())
    assert sorted(Path(p).name for p in positions) == [
        "postfix-ip-dedicated-1.log",
        f"{INSTANCE}.log",
    ]


def _blocks(db: Path) -> int:
    import datetime as dt

    ledger = SqliteLedger(db)
    try:
        return ledger.tally("acme", days=2, today=dt.datetime.now(dt.UTC).date()).block
    finally:
        ledger.close()


def test_an_unreadable_file_is_logged_once_and_read_once_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a rotation that recreates the file `0640 root adm` would make it (this suite
    runs as root, which reads any mode: the refusal is the open's answer, replaced)."""
    from relayops.feedback import follow

    log = tmp_path / "postfix-ip-a.log"
    log.write_text(HANDED)
    real_open = follow._open
    monkeypatch.setattr(follow, "_open", lambda path: "Permission denied")
    follower = LogFollower([str(log)], {})
    with caplog.at_level("WARNING", logger="relayops.feedback.follow"):
        assert _texts(follower) == [] and _texts(follower) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"event=maillog_unreadable path={log} error='Permission denied'"
    ]
    monkeypatch.setattr(follow, "_open", real_open)
    assert _texts(follower) == [("postfix-ip-a.log", HANDED)]
    assert follower.unreadable == set()
    follower.close()
