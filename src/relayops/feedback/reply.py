"""Codes inside a remote reply: the RFC 3463 enhanced status and the RFC 5321 reply code."""

from __future__ import annotations

import re

# class.subject.detail (RFC 3463 2.): not part of a dotted IP or version number.
_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
# A three-digit reply code (RFC 5321 4.2) opening the reply or following a colon,
# "said:", "returned" or a quote, not inside a longer number or an IP address.
_SMTP_RE = re.compile(r"(?:^|[\s:'\"(\[])([245][0-5]\d)(?=[\s\-]|$)(?![\d.])")
_DIAG_TYPE_RE = re.compile(r"^\s*(smtp|x-[a-z0-9-]+|x400|unix|mta)\s*;\s*", re.IGNORECASE)


# A status right after a reply code ("550-'5.7.1", "550 #5.1.0") is the remote's own,
# even when a reporting MTA wrote its summary status first (Amazon SES: "5.1.0 - Unknown
# address error 550-'5.7.1 …'").
_CODE_STATUS_RE = re.compile(
    r"(?<![\d.])[245][0-5]\d[ -]['\"#(]?([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)"
)


def _first_failure(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match of a 4xx/5xx code, else the first of any: a session transcript
    holds '250 2.1.5 Ok' lines before the refusal that matters."""
    first = None
    for match in pattern.finditer(text):
        if match.group(1)[0] in "45":
            return match
        first = first or match
    return first


def find_status(text: str) -> str | None:
    """The remote's enhanced status code in `text`, e.g. '5.1.1'."""
    match = _first_failure(_CODE_STATUS_RE, text) or _first_failure(_STATUS_RE, text)
    return ".".join(match.groups()) if match else None


def find_smtp_code(text: str) -> str | None:
    """The first SMTP reply code in `text`, e.g. '550'."""
    match = _first_failure(_SMTP_RE, text)
    return match.group(1) if match else None


def strip_diagnostic_type(value: str) -> str:
    """'smtp; 550 5.1.1 …' → '550 5.1.1 …' (RFC 3464 2.3.6 diagnostic-type)."""
    return _DIAG_TYPE_RE.sub("", value, count=1)


def unfold(text: str, limit: int = 1000) -> str:
    """Whitespace collapsed to single spaces, at most `limit` characters."""
    return re.sub(r"\s+", " ", text).strip()[:limit]


def reply_excerpt(text: str) -> str:
    """The remote reply inside an MTA's sentence: from its SMTP or status code on, when
    one is there ('host mx said: 550 5.1.1 no such user' → '550 5.1.1 no such user')."""
    flat = unfold(text, limit=4000)
    paired = _first_failure(_CODE_STATUS_RE, flat)
    code = _first_failure(_SMTP_RE, flat)
    status = _first_failure(_STATUS_RE, flat)
    starts = [m.start(1) for m in (code, status) if m is not None]
    start = paired.start() if paired is not None else min(starts, default=0)
    tail = flat[start:]
    # qmail and others put the code last ("no mail exchanger (#5.4.4)"): then the
    # words before it are the reply.
    if len(re.sub(r"[^A-Za-z]", "", tail)) < 8:
        return flat[:1000]
    return tail[:1000]
