"""The pure decision as a table: report + policies/antispam.yaml + figures → actions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relayops.feedback import read_report
from relayops.feedback.consequences import Decision, OperatorNote, decide
from relayops.policyd.ledger import Tally
from relayops.policyd.rules import AntiSpamRules
from support.feedback_mail import KEY, arf, relay_bounce, stamp

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
POLICY = AntiSpamRules()  # 1 per 3000 after 3000, bounces 5 %, disable, suspend
NOTIFY_ONLY = AntiSpamRules(on_complaint="notify_only", on_breach="notify_only")

GOOD = stamp()
FORGED = stamp(key=b"someone else's key")
OTHER_CUSTOMER_FORGED = stamp("globex", "globex-app", key=b"guess")
DISABLE = "spam complaint on 2026-12-01 about a message to reader@receiver.example"
FULL = {"status": "4.2.2", "diagnostic": "452 4.2.2 mailbox full"}
BLOCKED = {
    "status": "5.7.1",
    "diagnostic": "554 5.7.1 Client host [198.18.0.10] blocked using zen.spamhaus.org",
}
DELAYED = {"status": "4.4.1", "diagnostic": "451 4.4.1 timeout", "action": "delayed"}

CASES: list[tuple[str, bytes, AntiSpamRules, Tally, Decision]] = [
    (
        "complaint below min_volume: disabled, copy to the customer, operator told",
        arf(GOOD),
        POLICY,
        Tally(accepted=100),
        Decision("acme", {"complaint": 1}, (), DISABLE, None),
    ),
    (
        "complaint notify_only: counted and told, not disabled",
        arf(GOOD),
        NOTIFY_ONLY,
        Tally(accepted=100),
        Decision("acme", {"complaint": 1}, (), None, None),
    ),
    (
        "2nd complaint at 6000 accepted: 2/6000 is exactly the ceiling, no breach",
        arf(GOOD),
        POLICY,
        Tally(accepted=6000, complaint=1),
        Decision("acme", {"complaint": 1}, (), DISABLE, None),
    ),
    (
        "2nd complaint at 5999 accepted: above 1/3000, suspension proposed",
        arf(GOOD),
        POLICY,
        Tally(accepted=5999, complaint=1),
        Decision(
            "acme",
            {"complaint": 1},
            (),
            DISABLE,
            "complaint rate: 2 complaints for 5999 accepted recipients over 2 day(s), "
            "above the ceiling of 1 per 3000",
        ),
    ),
    (
        "2 complaints at 2999 accepted: below min_volume, no breach",
        arf(GOOD),
        POLICY,
        Tally(accepted=2999, complaint=1),
        Decision("acme", {"complaint": 1}, (), DISABLE, None),
    ),
    (
        "an opt-out report is no spam complaint",
        arf(GOOD, feedback_type="opt-out"),
        POLICY,
        Tally(accepted=100),
        Decision("acme", {}, (), None, None),
    ),
    (
        "a forged stamp for acme: nothing done",
        arf(FORGED),
        POLICY,
        Tally(accepted=100),
        Decision(None, unattributed="unverified X-Relayops-Trace stamp naming 'acme'"),
    ),
    (
        "a forged stamp for another customer: nothing done",
        arf(OTHER_CUSTOMER_FORGED),
        POLICY,
        Tally(),
        Decision(None, unattributed="unverified X-Relayops-Trace stamp naming 'globex'"),
    ),
    (
        "garbage",
        b"\x00\xffnot mail at all",
        POLICY,
        Tally(),
        Decision(None, unattributed="no X-Relayops-Trace stamp (not a message we can attribute)"),
    ),
    (
        "hard bounce: suppressed",
        relay_bounce(GOOD, to="Gone@Receiver.example"),
        POLICY,
        Tally(accepted=10),
        Decision("acme", {"hard": 1}, ("gone@receiver.example",), None, None),
    ),
    (
        "mailbox full: soft, never suppressed",
        relay_bounce(GOOD, **FULL),
        POLICY,
        Tally(accepted=10),
        Decision("acme", {"soft": 1}, (), None, None),
    ),
    (
        "a DNSBL block: a block, never suppressed",
        relay_bounce(GOOD, **BLOCKED),
        POLICY,
        Tally(accepted=10),
        Decision("acme", {"block": 1}, (), None, None),
    ),
    (
        "a delay warning: not final, nothing counted",
        relay_bounce(GOOD, **DELAYED),
        POLICY,
        Tally(accepted=10),
        Decision("acme", {}, (), None, None),
    ),
    (
        "a hard bounce with a forged stamp: no suppression",
        relay_bounce(FORGED),
        POLICY,
        Tally(accepted=10),
        Decision(None, unattributed="unverified X-Relayops-Trace stamp naming 'acme'"),
    ),
]


@pytest.mark.parametrize(
    ("data", "policy", "before", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision(data: bytes, policy: AntiSpamRules, before: Tally, expected: Decision) -> None:
    report = read_report(data, trace_key=KEY)
    got = decide(report, policy, before, now=NOW, original=data)
    assert (got.customer, got.counts, got.suppress, got.disable, got.suspend, got.unattributed) == (
        expected.customer,
        expected.counts,
        expected.suppress,
        expected.disable,
        expected.suspend,
        expected.unattributed,
    )


def test_a_complaint_sends_the_report_to_the_customer_and_tells_the_operator() -> None:
    data = arf(GOOD)
    got = decide(
        read_report(data, trace_key=KEY), POLICY, Tally(accepted=1), now=NOW, original=data
    )
    # The customer's notices are the daemon's kinds (policyd/notices.py), for the outbox.
    assert [(n.kind, n.customer) for n in got.notices] == [
        ("complaint", "acme"),
        ("disabled", "acme"),
    ]
    assert got.notices[0].attachment == data
    assert got.notices[1].attachment is None
    assert got.notices[0].context == {
        "feedback_type": "abuse",
        "recipient": "reader@receiver.example",
        "arrival_date": "2026-12-01",
    }
    assert got.notices[1].context == {"reason": got.disable}
    assert got.operator == (
        OperatorNote(
            "complaint",
            "acme",
            "abuse: message <20261201.1@acme.example> of login acme-app (queue id 4XyZab12) "
            "to reader@receiver.example",
        ),
    )


@pytest.mark.parametrize(
    ("hard_before", "accepted", "warned"),
    [
        (149, 3000, False),  # 150/3000 = 5 %: at the ceiling
        (150, 3000, True),  # 151/3000 > 5 %
        (200, 2999, False),  # below min_volume
    ],
)
def test_bounce_rate_over_the_ceiling_warns_the_operator(
    hard_before: int, accepted: int, warned: bool
) -> None:
    report = read_report(relay_bounce(GOOD), trace_key=KEY)
    got = decide(report, POLICY, Tally(accepted=accepted, hard=hard_before), now=NOW)
    kinds = [n.kind for n in got.operator]
    assert kinds == (["bounce-rate"] if warned else [])
    assert got.notices == ()
    if warned:
        assert got.operator[0].why == (
            f"{hard_before + 1} hard bounces for {accepted} accepted recipients, above 0.05"
        )
