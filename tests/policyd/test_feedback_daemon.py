"""The feedback loop against a real daemon, for both stores: a complaint ingested by
`relayops feedback ingest` makes the next RCPT 450 within the poll delay, `release`
restores DUNNO; a hard bounce gives the exact 550 until it expires or is lifted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relayops.policyd.ledger import Change, Suppression, open_ledger
from support.feedback_mail import KEY, arf, relay_bounce, stamp
from support.policyd import Daemon, PolicyClient, RedisServer, request, rules_data, write_rules
from support.processes import free_port

pytestmark = pytest.mark.real

FLAGGED = "450 4.7.1 account acme is temporarily disabled pending complaint review"
SINCE = datetime.now(UTC).date().isoformat()
SUPPRESSED = f"550 5.1.1 <gone@receiver.example> suppressed since {SINCE} after a hard bounce"


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'policyd.sqlite'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


def relayops(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "relayops", *args], input=stdin, capture_output=True, timeout=60
    )


def ingest(tmp: Path, store: str, rules: Path, data: bytes) -> dict[str, object]:
    key = tmp / "trace.key"
    key.write_bytes(KEY + b"\n")
    done = relayops(
        "feedback", "ingest", "--json", "--store", store, "--rules", str(rules),
        "--trace-key-file", str(key), "--spool", str(tmp / "spool"),
        stdin=data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, object] = json.loads(done.stdout)
    return result


def wait_for(client: PolicyClient, answer: str, *, rcpt: str = "someone@example.org") -> int:
    """Ask until the daemon gives `answer` for a RCPT (fails after 60 s); how many
    other answers came first."""
    t0 = time.monotonic()
    before = 0
    while (got := client.ask(request(recipient=rcpt))) != answer:
        assert time.monotonic() - t0 < 60, f"still {got!r}"
        before += 1
        time.sleep(0.1)
    return before


def start(daemons: list[Daemon], tmp: Path, rules: Path, store: str) -> Daemon:
    d = Daemon(tmp, rules, store).start()
    daemons.append(d)
    return d


def test_a_complaint_disables_and_release_restores(
    tmp_path: Path, daemons: list[Daemon], store: str
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    client = start(daemons, tmp_path, rules, store).client()
    assert client.ask(request()) == "DUNNO"
    outcome = ingest(tmp_path, store, rules, arf(stamp()))
    assert (outcome["customer"], outcome["applied"]) == ("acme", True)
    counted_before_flag = wait_for(client, FLAGGED)  # DUNNOs until the flag was polled
    done = relayops("feedback", "release", "acme", "--reason", "customer fixed the list",
                    "--store", store)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, b"acme: released (customer fixed the list)\n")
    wait_for(client, "DUNNO")  # the flagged answers are not counted, the DUNNO is
    time.sleep(0.5)  # the SQLite store writes its counters behind (50 ms)
    again = relayops("feedback", "release", "acme", "--reason", "x", "--store", store)
    assert again.returncode == 1
    status = relayops(
        "feedback", "status", "--json", "--customer", "acme", "--store", store,
        "--rules", str(rules),
    )  # fmt: skip
    (row,) = json.loads(status.stdout)["customers"]
    assert (row["complaints"], row["disabled"], row["accepted"]) == (
        1,
        None,
        2 + counted_before_flag,
    )
    assert [(e["action"], e["why"]) for e in row["audit"]] == [
        ("released", "customer fixed the list"),
        ("disabled", f"spam complaint on {SINCE} about a message to reader@receiver.example"),
    ]
    client.close()


def test_a_forged_complaint_disables_nobody(
    tmp_path: Path, daemons: list[Daemon], store: str
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    client = start(daemons, tmp_path, rules, store).client()
    outcome = ingest(tmp_path, store, rules, arf(stamp(key=b"forged")))
    assert outcome["customer"] is None
    time.sleep(1.5)  # longer than the flag and suppression polls
    assert client.ask(request()) == "DUNNO"
    client.close()


def test_a_hard_bounce_suppresses_exactly_that_recipient(
    tmp_path: Path, daemons: list[Daemon], store: str
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    client = start(daemons, tmp_path, rules, store).client()
    ingest(tmp_path, store, rules, relay_bounce(stamp()))
    wait_for(client, SUPPRESSED, rcpt="gone@receiver.example")
    assert client.ask(request(recipient="GONE@receiver.example")).startswith("550 5.1.1")
    assert client.ask(request(recipient="other@receiver.example")) == "DUNNO"
    assert client.ask(request(login="acme-crm", recipient="gone@receiver.example")) == SUPPRESSED
    done = relayops("feedback", "unsuppress", "acme", "gone@receiver.example", "--store", store)
    assert done.returncode == 0, done.stderr
    wait_for(client, "DUNNO", rcpt="gone@receiver.example")
    client.close()


def test_a_suppression_expires(tmp_path: Path, daemons: list[Daemon], store: str) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    client = start(daemons, tmp_path, rules, store).client()
    now = time.time()
    ledger = open_ledger(store)
    entry = Suppression("acme", "gone@receiver.example", now, now + 3, "hard bounce")
    ledger.apply(Change("e" * 64, "acme", datetime.now(UTC).date(), suppress=(entry,)))
    ledger.close()
    wait_for(client, SUPPRESSED, rcpt="gone@receiver.example")
    wait_for(client, "DUNNO", rcpt="gone@receiver.example")
    assert now + 3 <= time.time() < now + 10
    client.close()


def test_per_customer_metrics(tmp_path: Path, daemons: list[Daemon], store: str) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    port = free_port()
    d = Daemon(tmp_path, rules, store, "--metrics", f"127.0.0.1:{port}").start()
    daemons.append(d)
    ingest(tmp_path, store, rules, relay_bounce(stamp()))
    ingest(tmp_path, store, rules, arf(stamp()))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    lines = set(text.splitlines())
    for line in (
        "relayops_policyd_feedback_figures_ok 1.0",
        'relayops_policyd_feedback_complaints{customer="acme"} 1.0',
        'relayops_policyd_feedback_hard_bounces{customer="acme"} 1.0',
        'relayops_policyd_feedback_soft_bounces{customer="acme"} 0.0',
        'relayops_policyd_feedback_suppressed{customer="acme"} 1.0',
        'relayops_policyd_feedback_disabled{customer="acme"} 1.0',
        'relayops_policyd_feedback_disabled{customer="globex"} 0.0',
        "relayops_policyd_feedback_complaint_ceiling 0.0003333333333333333",
        "relayops_policyd_feedback_bounce_ceiling 0.05",
    ):
        assert line in lines, line
