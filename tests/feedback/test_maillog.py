"""The relay's own delivery failures from Postfix log lines: the parser and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from relayops.feedback.maillog import Tracker
from relayops.feedback.model import Reason
from relayops.policyd.ledger_sqlite import SqliteLedger
from support.policyd import rules_data, write_rules

# Postfix 3.7 log lines as a relay writes them (the submission service, smtp, qmgr).
LOG = (Path(__file__).parent / "data" / "maillog.txt").read_text()


def test_bounced_lines_with_their_login_or_sender() -> None:
    got = [
        (f.queue_id, f.login, f.sender, f.address, f.status, f.reason, f.hard, f.reply)
        for f in Tracker().failures(LOG.splitlines())
    ]
    assert got == [
        (
            "4XyZab12", "acme-app", "news@acme.example", "gone@receiver.example", "5.1.1",
            Reason.USER_UNKNOWN, True,
            "550 5.1.1 <gone@receiver.example>: Recipient address rejected: User unknown",
        ),
        (
            "4XyZab12", "acme-app", "news@acme.example", "full@receiver.example", "5.2.2",
            Reason.MAILBOX_FULL, False, "552 5.2.2 <full@receiver.example>: mailbox full",
        ),
        (
            "5AbCdE34", None, "news@acme-mail.example", "nobody@nowhere.example", "5.4.4",
            Reason.DOMAIN_UNKNOWN, True,
            "Host or domain name not found. Name service error for name=nowhere.example "
            "type=A: Host not found",
        ),
        (
            "6ZzZzZ56", None, None, "x@y.example", "5.1.1", Reason.USER_UNKNOWN, True,
            "550 5.1.1 unknown user",
        ),
    ]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=20))
def test_any_line_is_read_without_raising(lines: list[str]) -> None:
    prefix = "Dec  1 07:00:01 relay1 postfix/smtp[900]: 4XyZab12: "
    tracker = Tracker(max_tracked=3)
    for line in lines:
        tracker.feed(line)
        tracker.feed(prefix + line)


def test_the_command_records_hard_bounces_once(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(LOG)
    rules = write_rules(tmp_path / "policy.json", rules_data())
    store = f"sqlite:{tmp_path / 'policyd.sqlite'}"
    cmd = [sys.executable, "-m", "relayops", "feedback", "maillog", str(log), "--json",
           "--store", store, "--rules", str(rules)]  # fmt: skip
    first = subprocess.run(cmd, capture_output=True, check=True)
    rows = json.loads(first.stdout)["failures"]
    assert [(r["customer"], r["address"], r["hard"], r["applied"]) for r in rows] == [
        ("acme", "gone@receiver.example", True, True),
        ("acme", "full@receiver.example", False, True),
        ("acme", "nobody@nowhere.example", True, True),  # by the sender domain
        (None, "x@y.example", True, True),  # nobody's: recorded, suppresses nothing
    ]
    again = json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout)
    assert [r["applied"] for r in again["failures"]] == [False] * 4
    ledger = SqliteLedger(tmp_path / "policyd.sqlite")
    try:
        suppressed = [(s.customer, s.address) for s in ledger.suppressions(None, now=0)]
        tally = ledger.tally("acme", days=2, today=datetime.now(UTC).date())
    finally:
        ledger.close()
    assert suppressed == [("acme", "gone@receiver.example"), ("acme", "nobody@nowhere.example")]
    assert (tally.hard, tally.soft) == (2, 1)
