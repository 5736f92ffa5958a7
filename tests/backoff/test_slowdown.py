"""Receivers' "slow down" replies recognised, others not (pure table)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.backoff.slowdown import SlowDown, slow_down
from relayops.lab import receivers


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (receivers.reply(receivers.VOLUME_DEFERRAL, ip="198.18.0.111"), SlowDown.YAHOO_TSS),
        (
            "421 4.7.0 [TSS04] Messages from 192.0.2.20 temporarily deferred due to user "
            "complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
            SlowDown.YAHOO_TSS,
        ),
        (
            "421-4.7.28 [192.0.2.20      15] Our system has detected an unusual rate of "
            "unsolicited mail originating from your IP address. To protect our users from "
            "spam, mail sent from your IP address has been temporarily rate limited.",
            SlowDown.GMAIL_RATE,
        ),
        (
            "451 4.7.650 The mail server [192.0.2.20] has been temporarily rate limited due "
            "to IP reputation. For e-mail delivery information, see https://aka.ms/postmaster",
            SlowDown.MICROSOFT_RATE,
        ),
        (
            "451 4.7.500 Server busy. Please try again later from [192.0.2.20]. (S77714)",
            SlowDown.MICROSOFT_BUSY,
        ),
        ("421 4.7.0 Too many messages from your IP, slow down", SlowDown.RATE_LIMIT),
        ("450 4.7.1 Rate limit exceeded, try again later", SlowDown.RATE_LIMIT),
        # not a slow-down: refusals, other deferrals, garbage
        (receivers.reply(receivers.REPUTATION_BLOCK, ip="198.18.0.111"), None),
        ("554 5.7.1 [TS03] All messages from 192.0.2.20 will be permanently deferred", None),
        ("452 4.2.2 <a@b.example>: Recipient address rejected: Mailbox full", None),
        ("421 4.7.0 isp.lab Error: too many errors", None),
        ("lost connection with isp.lab[198.18.0.3] while sending RCPT TO", None),
        ("", None),
    ],
)
def test_slow_down(reply: str, expected: SlowDown | None) -> None:
    assert slow_down(reply) is expected


@given(st.text(max_size=300))
def test_any_reply_without_raising(reply: str) -> None:
    slow_down(reply)
