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


def find_status(text: str) -> str | None:
    """The remote's enhanced status code in `text`, e.g. '5.1.1'."""
    match = _CODE_STATUS_RE.search(text) or _STATUS_RE.search(text)
    return ".".join(match.groups()) if match else None


def find_smtp_code(text: str) -> str | None:
    """The first SMTP reply code in `text`, e.g. '550'."""
    match = _SMTP_RE.search(text)
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
    paired = _CODE_STATUS_RE.search(flat)
    if paired is not None:
        return flat[paired.start() :][:1000]
    code = _SMTP_RE.search(flat)
    status = _STATUS_RE.search(flat)
    starts = [m.start(1) for m in (code, status) if m is not None]
    return flat[min(starts) :][:1000] if starts else flat[:1000]
