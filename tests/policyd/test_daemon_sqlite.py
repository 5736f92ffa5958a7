"""`relayops policyd` as a process with the SQLite store: reloads, restarts, kills, locks."""

from __future__ import annotations

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


def stored_count(db: Path, customer: str = "acme") -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT count FROM counters WHERE customer = ? AND day = ?", (customer, today())
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


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@pytest.mark.parametrize("mode", ["defer", "dunno"])
def test_sqlite_locked_by_another_process(
    tmp_path: Path, db: Path, daemons: list[Daemon], mode: str
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    d = start(daemons, tmp_path, rules, f"sqlite:{db}", "--on-store-error", mode)
    client = d.client()
    assert ask_many(client, 10) == ["DUNNO"] * 10
    time.sleep(0.2)
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db), "3"], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    answers, slowest = [], 0.0
    lock_end = time.monotonic() + 2.5
    while time.monotonic() < lock_end:
        t0 = time.perf_counter()
        answers.append(client.ask(request()))
        slowest = max(slowest, time.perf_counter() - t0)
    assert slowest < 0.5  # no request waits for the locked file
    counted = answers.count("DUNNO") if mode == "defer" else None
    if mode == "defer":
        # Up to the loss window the daemon counts in memory; past it, tempfails.
        assert counted == 1000
        assert set(answers) == {"DUNNO", DEFER}
    else:
        assert set(answers) == {"DUNNO"}
    locker.wait(10)
    # Recovery without a restart: the writer catches up and requests count again.
    deadline = time.monotonic() + 5
    while client.ask(request()) != "DUNNO" and time.monotonic() < deadline:
        time.sleep(0.05)
    client.close()
    assert d.stop() == 0
    log = d.log()
    assert log.count("event=store_outage") == 1, log
    assert log.count("event=store_recovered") == 1, log
    if counted is not None:
        assert stored_count(db) == 10 + counted + 1


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
