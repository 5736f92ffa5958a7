"""Which receiver replies mean "slow down" (pure table; issue #12 step 3).

Wordings as the providers document and send them:

- Yahoo: `421 4.7.0 [TSS04] Messages from IP temporarily deferred due to unexpected
  volume or user complaints` (also [TSS01]–[TSS09]); postmaster.yahooinc.com/error-codes.
- Gmail: `421-4.7.28 ... Our system has detected an unusual rate of unsolicited mail
  originating from your IP address ... temporarily rate limited`.
- Microsoft: `451 4.7.650 The mail server [IP] has been temporarily rate limited due to
  IP reputation` (4.7.650–4.7.659), and `4.7.500 Server busy. Please try again later`.
- Anyone: a 4xx reply that says rate limit, throttled, too many messages or connections.

Only temporary replies count: a 5xx is a refusal, judged by the bounce rate instead.
"""

from __future__ import annotations

import enum
import re


class SlowDown(enum.StrEnum):
    YAHOO_TSS = "yahoo-tss"
    GMAIL_RATE = "gmail-4.7.28"
    MICROSOFT_RATE = "microsoft-4.7.65x"
    MICROSOFT_BUSY = "microsoft-4.7.500"
    RATE_LIMIT = "rate-limit"


_TEMPORARY = re.compile(r"^\s*4\d\d[ -]")
_RULES: tuple[tuple[SlowDown, re.Pattern[str]], ...] = (
    (SlowDown.YAHOO_TSS, re.compile(r"\[TSS0\d\]")),
    (SlowDown.GMAIL_RATE, re.compile(r"\b4\.7\.28\b")),
    (SlowDown.MICROSOFT_RATE, re.compile(r"\b4\.7\.65\d\b")),
    (SlowDown.MICROSOFT_BUSY, re.compile(r"\b4\.7\.500\b.*server busy", re.IGNORECASE)),
    (
        SlowDown.RATE_LIMIT,
        re.compile(
            r"rate[- ]?limit|throttl|too many (?:messages|mails|connections|sessions)"
            r"|sending rate|slow down",
            re.IGNORECASE,
        ),
    ),
)


def slow_down(reply: str) -> SlowDown | None:
    """The kind of "slow down" a receiver's reply is, None if it is not one."""
    if not _TEMPORARY.match(reply):
        return None
    for kind, pattern in _RULES:
        if pattern.search(reply):
            return kind
    return None
