"""`ingest` against a real SQLite ledger: spool always, act only on verified reports,
at most once per message, never crash on what arrives."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback.corpus import corpus_dir
from relayops.feedback.ingest import MAX_SPOOL_BYTES, Spool, ingest, receive
from relayops.policyd.ledger import Suppression, Tally
from relayops.policyd.ledger_sqlite import SqliteLedger
from relayops.policyd.notices import NoticeRequest
from relayops.policyd.rules import AntiSpamRules
from support.feedback_mail import KEY, arf, relay_bounce, stamp
from support.policyd import rules_data, write_rules

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SAMPLES = sorted(corpus_dir().glob("*.eml"))


DEFAULTS = AntiSpamRules()


def run(
    tmp: Path,
    data: bytes,
    *,
    policy: AntiSpamRules = DEFAULTS,
    queued: list[NoticeRequest] | None = None,
) -> dict[str, object]:
    ledger = SqliteLedger(tmp / "store.sqlite")
    try:
        return ingest(
            receive(io.BytesIO(data)),
            ledger=ledger,
            policy=policy,
            spool=Spool(tmp / "spool"),
            notify=(queued if queued is not None else []).append,
            key=KEY,
            now=NOW,
        )
    finally:
        ledger.close()


def state(tmp: Path) -> tuple[dict[str, str], list[Suppression], Tally]:
    ledger = SqliteLedger(tmp / "store.sqlite")
    try:
        return (
            ledger.flags(),
            ledger.suppressions(None, now=NOW.timestamp()),
            ledger.tally("acme", days=2, today=NOW.date()),
        )
    finally:
        ledger.close()


def test_a_complaint_disables_queues_the_copy_and_is_applied_once(tmp_path: Path) -> None:
    data = arf(stamp())
    notices: list[NoticeRequest] = []
    first = run(tmp_path, data, queued=notices)
    assert (first["applied"], first["customer"], first["disabled"]) == (
        True,
        "acme",
        "spam complaint on 2026-12-01 about a message to reader@receiver.example",
    )
    assert run(tmp_path, data, queued=notices)["applied"] is False  # Postfix retried it
    flags, suppressed, tally = state(tmp_path)
    assert flags == {"acme": first["disabled"]}
    assert (suppressed, tally) == ([], Tally(accepted=0, complaint=1))
    # One way for notices: the daemon's outbox (the CLI binds outbox.queue_notice).
    assert [(n.kind, n.customer, dict(n.context)) for n in notices] == [
        (
            "complaint",
            "acme",
            {
                "feedback_type": "abuse",
                "recipient": "reader@receiver.example",
                "arrival_date": "2026-12-01",
            },
        ),
        ("disabled", "acme", {"reason": first["disabled"]}),
    ]
    assert notices[0].attachment == data
    assert first["operator"] == ["complaint"]
    digest = first["sha256"]
    assert (tmp_path / "spool" / f"{digest}.eml").read_bytes() == data
    assert json.loads((tmp_path / "spool" / f"{digest}.json").read_text())["applied"] is False


def test_a_hard_bounce_suppresses_for_the_policy_days(tmp_path: Path) -> None:
    run(tmp_path, relay_bounce(stamp()), policy=AntiSpamRules(suppress_days=30))
    _, (entry,), tally = state(tmp_path)
    assert (entry.customer, entry.address, entry.since) == (
        "acme",
        "gone@receiver.example",
        NOW.timestamp(),
    )
    assert entry.expires - entry.since == 30 * 86400
    assert tally == Tally(hard=1)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff garbage",
        arf(stamp(key=b"forged")),
        arf(stamp("globex", "globex-app", key=b"forged")),
        relay_bounce(stamp(key=b"forged")),
        relay_bounce("v=1; c=acme; l=acme-app; q=1; t=1; h=AAAAAAAAAAAAAAAAAAAAAA"),
    ],
    ids=["empty", "garbage", "forged-acme", "forged-globex", "forged-bounce", "bad-mac"],
)
def test_bad_input_is_kept_and_does_nothing(tmp_path: Path, data: bytes) -> None:
    notices: list[NoticeRequest] = []
    outcome = run(tmp_path, data, queued=notices)
    assert outcome["customer"] is None and outcome["counts"] == {}
    assert state(tmp_path)[:2] == ({}, [])
    assert (tmp_path / "spool" / f"{outcome['sha256']}.eml").read_bytes() == data
    assert notices == []


def test_a_50_mb_message_is_read_whole_and_kept_cut(tmp_path: Path) -> None:
    data = relay_bounce(stamp()) + b"X" * (50 * 1024 * 1024)
    outcome = run(tmp_path, data)
    assert (outcome["size"], outcome["cut"], outcome["customer"]) == (len(data), True, "acme")
    kept = tmp_path / "spool" / f"{outcome['sha256']}.eml"
    assert kept.stat().st_size == MAX_SPOOL_BYTES


def test_the_spool_keeps_the_newest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_files=3)
    for n in range(5):
        spool.keep(receive(io.BytesIO(b"message %d" % n)))
    assert len(list(tmp_path.glob("*.eml"))) == 3


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes_never_act(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    tmp = tmp_path_factory.mktemp("arb")
    outcome = run(tmp, data)
    assert outcome["customer"] is None
    assert (tmp / "spool" / f"{outcome['sha256']}.eml").read_bytes() == data
    assert state(tmp)[:2] == ({}, [])


@SETTINGS
@given(
    index=st.integers(min_value=0, max_value=max(0, len(SAMPLES) - 1)),
    cut=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=20),
)
def test_corpus_truncated_and_corrupted_never_acts(
    tmp_path_factory: pytest.TempPathFactory,
    index: int,
    cut: float,
    flips: list[tuple[float, int]],
) -> None:
    """The corpus is mail about others' messages (no stamp of ours): never an action."""
    data = bytearray(SAMPLES[index].read_bytes()[: int(len(SAMPLES[index].read_bytes()) * cut)])
    for where, byte in flips:
        if data:
            data[int(where * (len(data) - 1))] = byte
    tmp = tmp_path_factory.mktemp("corpus")
    outcome = run(tmp, bytes(data))
    assert outcome["customer"] is None
    assert (tmp / "spool" / f"{outcome['sha256']}.eml").read_bytes() == bytes(data)
    assert state(tmp)[:2] == ({}, [])


def _cli(tmp: Path, store: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    rules = write_rules(tmp / "policy.json", rules_data())
    (tmp / "key").write_bytes(KEY)
    return subprocess.run(
        [sys.executable, "-m", "relayops", "feedback", "ingest", "--store", store,
         "--rules", str(rules), "--trace-key-file", str(tmp / "key"),
         "--spool", str(tmp / "spool")],
        input=data, capture_output=True, timeout=60,
    )  # fmt: skip


def test_the_pipe_exit_codes(tmp_path: Path) -> None:
    """0 for any message (Postfix must not bounce garbage back); 75 (retry later) when
    the store cannot be used — the message is in the spool either way."""
    garbage = _cli(tmp_path, f"sqlite:{tmp_path / 'db.sqlite'}", b"\x00garbage")
    assert garbage.returncode == 0, garbage.stderr
    down = _cli(tmp_path, "sqlite:/nonexistent/dir/db.sqlite", relay_bounce(stamp()))
    assert down.returncode == 75
    assert down.stderr.decode() == (
        "relayops feedback ingest: sqlite:/nonexistent/dir/db.sqlite: "
        "unable to open database file\n"
    )
    assert len(list((tmp_path / "spool").glob("*.eml"))) == 2


LOGGED = (
    "Dec  1 10:00:00 o1 postfix-ip-shared-us-1/qmgr[1]: 9F00A1: from=<app@acme.example>, "
    "size=900, nrcpt=1 (queue active)\n"
    "Dec  1 10:00:01 o1 postfix-ip-shared-us-1/smtp[2]: 9F00A1: to=<gone@receiver.example>, "
    "relay=mx.receiver.example[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, "
    "status=bounced (host mx.receiver.example[192.0.2.9] said: 550 5.1.1 "
    "<gone@receiver.example>: Recipient address rejected: User unknown "
    "(in reply to RCPT TO command))\n"
)


@pytest.mark.parametrize("first", ["log", "dsn"])
def test_the_relays_refusal_counts_once_from_its_log_and_its_dsn(
    tmp_path: Path, first: str
) -> None:
    """The follower reads the refusal in the output instance's log; Postfix's DSN about it
    (X-Postfix-Queue-ID: the same queue ID), forwarded to the bounce address, is the same
    refusal: whichever comes second is recorded as seen, not counted again."""
    from relayops.feedback.ingest import record_failure
    from relayops.feedback.maillog import Tracker
    from relayops.policyd.rules import parse_rules

    rules = parse_rules(rules_data())
    (failure,) = Tracker().failures(LOGGED.splitlines())

    def from_log() -> bool:
        ledger = SqliteLedger(tmp_path / "store.sqlite")
        try:
            row = record_failure(failure, rules=rules, ledger=ledger, notify=None, now=NOW)
        finally:
            ledger.close()
        assert (row["customer"], row["address"]) == ("acme", "gone@receiver.example")
        return bool(row["applied"])

    if first == "log":
        assert from_log() is True
        outcome = run(tmp_path, relay_bounce(stamp()))
        assert (outcome["applied"], outcome["recorded_before"]) == (
            False,
            ["gone@receiver.example"],
        )
    else:
        outcome = run(tmp_path, relay_bounce(stamp()))
        assert (outcome["applied"], outcome["recorded_before"]) == (True, [])
        assert from_log() is False
    assert (outcome["customer"], outcome["counts"], outcome["suppressed"]) == (
        "acme",
        {"hard": 1},
        ["gone@receiver.example"],
    )
    _, suppressed, tally = state(tmp_path)
    assert [(s.customer, s.address) for s in suppressed] == [("acme", "gone@receiver.example")]
    assert tally == Tally(hard=1)
