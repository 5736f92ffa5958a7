"""`relayops policyd` as a process with the SQLite store: reloads, restarts, kills, locks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from relayops.policyd.store_sqlite import clear_flag, set_flag
from support.bench import bench_module
from support.policyd import (
    Daemon,
    PolicyClient,
    encode,
    policyd_command,
    request,
    rules_data,
    write_rules,
)
from support.smtp_sink import SmtpSink

pytestmark = pytest.mark.real  # starts `relayops policyd` as a process

DEFER = "DEFER_IF_PERMIT 4.3.0 quota service temporarily unavailable, try again later"


def today(tz: str = "Europe/Paris") -> str:
    return datetime.now(UTC).astimezone(ZoneInfo(tz)).date().isoformat()


def stored_count(db: Path, customer: str = "acme", *, tz: str = "Europe/Paris") -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT count FROM counters WHERE customer = ? AND day = ?", (customer, today(tz))
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def ask_many(client: PolicyClient, n: int) -> list[str]:
    return [client.ask(request(recipient=f"r{i}@example.org")) for i in range(n)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "counters.sqlite"


def start(daemons: list[Daemon], tmp: Path, rules: Path, store: str, *extra: str) -> Daemon:
    d = Daemon(tmp, rules, store, *extra, name=str(len(daemons)))
    daemons.append(d)
    return d.start()


def test_sighup_reloads_rules_and_keeps_counters(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 5}))
    d = start(daemons, tmp_path, rules, f"sqlite:{db}")
    client = d.client()
    assert ask_many(client, 3) == ["DUNNO"] * 3
    write_rules(rules, rules_data(acme={"daily_quota": 4}))
    d.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "event=rules_reloaded" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    answers = ask_many(client, 2)  # 3 already counted: one more fits under 4
    assert answers[0] == "DUNNO"
    assert answers[1].startswith("452 4.7.1 daily quota of 4 reached for acme")

    # An invalid file: the old rules stay, the log says why.
    rules.write_text(json.dumps({**rules_data(), "schema_version": 9}))
    d.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "event=reload_failed" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "schema_version 9 is not supported" in d.log()
    assert client.ask(request()).startswith("452 4.7.1 daily quota of 4 reached")
    client.close()


def test_clean_stop_loses_nothing(tmp_path: Path, db: Path, daemons: list[Daemon]) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    d = start(daemons, tmp_path, rules, f"sqlite:{db}")
    client = d.client()
    assert ask_many(client, 321) == ["DUNNO"] * 321
    client.close()
    assert d.stop() == 0
    assert stored_count(db) == 321
    d2 = start(
        daemons, tmp_path, write_rules(rules, rules_data(acme={"daily_quota": 322})), f"sqlite:{db}"
    )
    client = d2.client()
    assert ask_many(client, 2)[1].startswith("452 4.7.1 daily quota of 322")
    client.close()


def test_sigkill_loses_at_most_the_documented_window(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    d = start(daemons, tmp_path, rules, f"sqlite:{db}")
    client = d.client()
    assert ask_many(client, 400) == ["DUNNO"] * 400
    time.sleep(0.3)  # > flush interval: all of these are on disk
    burst = ask_many(client, 3000)  # the last of these may be in memory only
    accepted = 400 + burst.count("DUNNO")
    assert set(burst) <= {"DUNNO", DEFER}
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    client.close()
    kept = stored_count(db)
    assert accepted - 1000 <= kept <= accepted  # max_unflushed = 1000
    assert kept >= 400
    # Restarted, the daemon counts on from what the file holds.
    d2 = start(
        daemons,
        tmp_path,
        write_rules(rules, rules_data(acme={"daily_quota": kept + 1})),
        f"sqlite:{db}",
    )
    client = d2.client()
    answers = ask_many(client, 2)
    assert answers[0] == "DUNNO" and answers[1].startswith("452 4.7.1")
    client.close()


MAX_WAIT = 0.5  # SqliteStore.max_wait: the longest a request waits for the writer


@pytest.mark.real
def test_sqlite_locked_5s_requests_wait_then_tempfail_then_recover(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    """Another process holds BEGIN EXCLUSIVE for 5 s under steady load (bench/policyd/fault.py)."""
    fault = bench_module("fault")
    rules = write_rules(tmp_path / "policy.json", fault.rules())
    d = start(daemons, tmp_path, rules, f"sqlite:{db}")
    run = asyncio.run(fault.run_fault(d.port, db, rate=1000, lock_for=5.0, total=9.0))
    print(run.table())  # the timeline, in the test output (-s) and in bench/policyd/RESULTS.md
    assert d.stop() == 0
    acme = [a for a in run.answers if a.customer == "acme"]
    tiny = [a for a in run.answers if a.customer == "tiny"]
    # Exact answers throughout: tiny gets its 5, then 452 — during the outage too.
    assert [run.kind(a) for a in tiny] == ["DUNNO"] * 5 + ["452"] * (len(tiny) - 5)
    assert {run.kind(a) for a in acme} == {"DUNNO", "4.3.0"}
    assert {a.action for a in acme if run.kind(a) == "4.3.0"} == {DEFER}
    deferred = [a for a in acme if a.action == DEFER]
    first_defer, last_defer = deferred[0].at, deferred[-1].at
    # The loss window is absorbed first, then requests wait, then the store is out.
    counted_in_lock = [a for a in acme if run.locked_at <= a.at < first_defer]
    assert 0 < len(counted_in_lock) <= 1000, len(counted_in_lock)
    # The first tempfail is answered no sooner than max_wait into the lock.
    assert deferred[0].at + deferred[0].latency >= run.locked_at + MAX_WAIT - 0.05
    assert last_defer <= run.released_at + 1.0  # recovery by itself, within a second
    # Never fail open: no DUNNO between the first tempfail and the release of the lock.
    # A request sent during the lock may wait for it and be counted once it is released.
    assert not [
        a
        for a in acme
        if first_defer <= a.at and a.at + a.latency < run.released_at and a.action == "DUNNO"
    ]
    # Requests wait, bounded: the slowest answer is the max_wait of the first waiters.
    slowest = max(a.latency for a in run.answers)
    assert MAX_WAIT - 0.05 <= slowest <= MAX_WAIT + 0.35, slowest
    after = [a for a in acme if a.at > last_defer]
    assert len(after) > 500 and {a.action for a in after} == {"DUNNO"}
    # Every DUNNO was counted, and nothing else was.
    assert stored_count(db, "acme", tz="UTC") == len([a for a in acme if a.action == "DUNNO"])
    assert stored_count(db, "tiny", tz="UTC") == 5
    log = d.log()
    assert log.count("event=store_outage") == 1, log
    assert log.count("event=store_recovered") == 1, log


@pytest.mark.real
def test_sqlite_locked_with_on_store_error_dunno_lets_mail_through_uncounted(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    """The operator's explicit choice: availability over the quota while the store is out."""
    fault = bench_module("fault")
    rules = write_rules(tmp_path / "policy.json", fault.rules())
    d = start(daemons, tmp_path, rules, f"sqlite:{db}", "--on-store-error", "dunno")
    run = asyncio.run(fault.run_fault(d.port, db, rate=1000, lock_for=3.0, total=5.0))
    assert d.stop() == 0
    acme = [a for a in run.answers if a.customer == "acme"]
    assert {a.action for a in acme} == {"DUNNO"}
    uncounted = len(acme) - stored_count(db, "acme", tz="UTC")
    assert uncounted > 0
    tiny = [run.kind(a) for a in run.answers if a.customer == "tiny"]
    assert tiny == ["DUNNO"] * 5 + ["452"] * (len(tiny) - 5)
    assert "event=store_outage" in d.log()


def test_complaint_flag_in_the_table_takes_effect_within_the_poll_delay(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    d = start(daemons, tmp_path, rules, f"sqlite:{db}")
    client = d.client()
    assert client.ask(request()) == "DUNNO"
    set_flag(db, "acme", "FBL complaint 2026-11-23")
    flagged = "450 4.7.1 account acme is temporarily disabled pending complaint review"
    t0 = time.monotonic()
    while (answer := client.ask(request())) == "DUNNO" and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert answer == flagged
    assert time.monotonic() - t0 < 3  # the table is polled every second
    clear_flag(db, "acme")
    t0 = time.monotonic()
    while (answer := client.ask(request())) == flagged and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert answer == "DUNNO"
    client.close()


def test_second_daemon_on_the_same_file_refuses_to_start(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    start(daemons, tmp_path, rules, f"sqlite:{db}")
    second = Daemon(tmp_path, rules, f"sqlite:{db}", name="second")
    with pytest.raises(RuntimeError, match="exited with 1"):
        second.start()
    assert "is in use by another relayops policyd" in second.log()


def test_warning_and_limit_mails_reach_the_notify_smtp_once(
    tmp_path: Path, db: Path, daemons: list[Daemon], smtp_sink: SmtpSink
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 10}))
    d = start(
        daemons, tmp_path, rules, f"sqlite:{db}", "--notify-smtp", f"127.0.0.1:{smtp_sink.port}"
    )
    client = d.client()
    t0 = time.perf_counter()
    answers = ask_many(client, 15)
    assert time.perf_counter() - t0 < 1.0  # the mails do not slow the answers down
    assert answers.count("DUNNO") == 10
    mails = smtp_sink.wait_for(2)
    time.sleep(0.3)
    assert len(smtp_sink.messages) == 2
    subjects = sorted(m.message["Subject"] for m in mails)
    assert subjects == [
        "Acme Corp: 80 % of today's quota used",
        "Acme Corp: daily quota of 10 reached",
    ]
    assert {(m.mail_from, tuple(m.rcpt_to)) for m in mails} == {
        ("noreply@relay.example.net", ("ops@acme.example",))
    }
    client.close()


def test_five_hundred_persistent_connections(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    d = start(daemons, tmp_path, rules, f"sqlite:{db}")
    clients = [d.client() for _ in range(500)]
    for rnd in range(2):  # twice over the same connections
        for c in clients:
            c.send_raw(encode(request(recipient=f"{rnd}@example.org")))
        assert [c.read_answer() for c in clients] == ["DUNNO"] * 500
    for c in clients:
        c.close()
    assert d.stop() == 0
    assert stored_count(db) == 1000


def test_metrics_endpoint(tmp_path: Path, db: Path, daemons: list[Daemon]) -> None:
    from support.processes import free_port

    port = free_port()
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 1}))
    d = start(daemons, tmp_path, rules, f"sqlite:{db}", "--metrics", f"127.0.0.1:{port}")
    client = d.client()
    ask_many(client, 3)
    client.send_raw(b"junk\n\n")
    client.read_answer()
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "relayops_policyd_requests_total 3.0" in text
    assert 'relayops_policyd_refusals_total{reason="quota"} 2.0' in text
    assert 'relayops_policyd_bad_requests_total{why="malformed"} 1.0' in text
    assert "relayops_policyd_connections 1.0" in text
    assert "relayops_policyd_store_outage 0.0" in text
    client.close()


def test_unix_socket_listener(tmp_path: Path, db: Path) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    sock = tmp_path / "policy.sock"
    sock_stale = socket.socket(socket.AF_UNIX)
    sock_stale.bind(str(sock))  # a stale socket file from a previous run
    sock_stale.close()
    cmd = policyd_command(rules, f"unix:{sock}", f"sqlite:{db}", "--socket-mode", "0666")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = PolicyClient(str(sock))
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        assert client.ask(request()) == "DUNNO"
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not sock.exists()  # removed on a clean stop


@pytest.mark.real
def test_a_notice_smtp_that_never_answers_does_not_slow_the_answers(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    """The MTA accepts the TCP connection and then says nothing (smtplib waits 10 s)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # never accepted: connects complete in the backlog, no greeting ever
    port = silent.getsockname()[1]
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 10}))
    d = start(daemons, tmp_path, rules, f"sqlite:{db}", "--notify-smtp", f"127.0.0.1:{port}")
    client = d.client()
    try:
        t0 = time.perf_counter()
        answers = ask_many(client, 10)  # the warning goes out at 8: its send hangs
        time.sleep(0.2)  # the notifier's worker is now stuck in the SMTP greeting
        slowest = 0.0
        for _ in range(50):
            t1 = time.perf_counter()
            answers.append(client.ask(request()))
            slowest = max(slowest, time.perf_counter() - t1)
        assert time.perf_counter() - t0 < 1.5
        assert slowest < 0.1
        assert answers.count("DUNNO") == 10
        refused = "452 4.7.1 daily quota of 10 reached for acme; sending resumes at 00:00 "
        assert answers[10:] == [refused + "Europe/Paris"] * 50
    finally:
        client.close()
        silent.close()


PULSES = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
hold, gap, until = float(sys.argv[2]), float(sys.argv[3]), time.monotonic() + float(sys.argv[4])
pulses = 0
while time.monotonic() < until:
    conn.execute("BEGIN EXCLUSIVE")
    if not pulses:
        print("locked", flush=True)
    time.sleep(hold)
    conn.execute("ROLLBACK")
    pulses += 1
    time.sleep(gap)
print(pulses, flush=True)
"""


@pytest.mark.real
def test_a_writer_held_back_in_150ms_pulses_costs_no_tempfail(
    tmp_path: Path, db: Path, daemons: list[Daemon]
) -> None:
    """Full-speed load while another process locks the file 150 ms of every 250 ms for 3 s.

    The writer is held up to about 180 ms at a time (SQLite's busy handler polls
    the lock at growing intervals, 50 ms by then), less than max_wait: whether
    the window absorbs a pulse or requests wait for it, none is refused and
    every answer is exact. (test_store_sqlite.py shows the waiting itself, in
    process.) With gaps shorter than the busy handler's polling interval
    (e.g. 150 ms locked, 50 ms free) the writer can miss every gap for more
    than max_wait: that is an outage by definition, and tempfails follow.
    """
    loadgen = bench_module("loadgen")
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 15000}))
    d = start(daemons, tmp_path, rules, f"sqlite:{db}")
    locker = subprocess.Popen(
        [sys.executable, "-c", PULSES, str(db), "0.15", "0.1", "3.0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    payloads = [encode(request(recipient=f"r{i}@example.org")) for i in range(20000)]
    result = asyncio.run(loadgen.run_load(f"127.0.0.1:{d.port}", 8, 20000, payloads, exact=True))
    pulses = int(locker.stdout.readline())
    locker.wait(10)
    assert pulses >= 10
    refused = "452 4.7.1 daily quota of 15000 reached for acme; sending resumes at 00:00 "
    assert result.answers == {"action=DUNNO": 15000, f"action={refused}Europe/Paris": 5000}
    assert d.stop() == 0
    assert stored_count(db) == 15000
    assert "event=store_outage" not in d.log()
