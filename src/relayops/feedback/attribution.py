"""Whose message a report is about, from the original message quoted in it.

Sources, in order: an attached message/rfc822 or text/rfc822-headers part, else the
headers quoted in the text after the bounce's "copy of the message" marker. From
those headers: the relay's `X-Relayops-Trace` stamp (trusted only when its MAC
verifies), Gmail's `Feedback-ID`, every DKIM-Signature `d=`, the Message-ID, and the
Postfix queue ID of the relay's Received line.
"""

from __future__ import annotations

import email
import re
from email.message import Message

from relayops.feedback.model import Origin
from relayops.feedback.parse import PARSE_ERRORS, content_type, header, header_all, walk
from relayops.feedback.trace import HEADER, verify_trace

ORIGINAL_TYPES = frozenset({"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"})
_HEADER_START_RE = re.compile(
    r"^(Return-Path|Received|Message-ID|DKIM-Signature|X-Relayops-Trace|From|Date|To|Subject"
    r"|MIME-Version):",
    re.IGNORECASE | re.MULTILINE,
)
_DKIM_D_RE = re.compile(r"(?:^|;)\s*d\s*=\s*([A-Za-z0-9.-]+)")
# Received: … by host (Postfix) with ESMTPSA id 4XyZabc …  (Postfix's own format)
_POSTFIX_ID_RE = re.compile(r"\(Postfix\)\s+(?:with\s+(\S+)\s+)?id\s+([0-9A-Za-z]{5,})")


def original_headers(message: Message, quoted_text: str, notice: str = "") -> Message | None:
    """The original message's headers: an attached part, else the quoted text, else a
    message/rfc822 part written into the notice's text."""
    for part in walk(message):
        kind = content_type(part)
        if kind not in ORIGINAL_TYPES:
            continue
        try:
            payload = part.get_payload()
        except PARSE_ERRORS:
            continue
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        if isinstance(payload, str):
            return _headers_from_text(payload)
    if quoted_text:
        return _headers_from_text(quoted_text)
    embedded = embedded_original(notice)
    return _headers_from_text(embedded) if embedded else None


_FIELD_LINE_RE = re.compile(r"^[!-9;-~]{1,76}:")
_EMBEDDED_RE = re.compile(
    r"^Content-Type:\s*(message/rfc822|text/rfc822-headers)[^\n]*\n(?:[^\n]+\n)*\n",
    re.IGNORECASE | re.MULTILINE,
)


def _headers_from_text(text: str) -> Message | None:
    """Headers quoted in a bounce's text. Quoting MTAs often break folding (a
    continuation line without its leading space): such a line is re-joined to the
    field above instead of ending the header block."""
    match = _HEADER_START_RE.search(text)
    if match is None:
        return None
    lines: list[str] = []
    for line in text[match.start() :].split("\n"):
        if not line.strip():
            break
        if lines and not line[:1].isspace() and not _FIELD_LINE_RE.match(line):
            line = " " + line
        lines.append(line)
    try:
        return email.message_from_string("\n".join(lines) + "\n\n")
    except PARSE_ERRORS:
        return None


def embedded_original(text: str) -> str:
    """The text after a `Content-Type: message/rfc822` part header written into a
    report whose MIME structure did not parse (a boundary that never occurs)."""
    match = _EMBEDDED_RE.search(text)
    return text[match.end() :] if match else ""


def _postfix_queue_id(received: list[str]) -> str | None:
    """The relay's queue ID: an authenticated submission (ESMTPSA/ESMTPA) Postfix hop
    first, else the top-most Postfix hop (the last one before the receiver)."""
    found = [(m.group(1) or "", m.group(2)) for r in received if (m := _POSTFIX_ID_RE.search(r))]
    for protocol, queue_id in found:
        if protocol.upper().endswith(("SA", "A")) and protocol.upper().startswith("ESMTP"):
            return queue_id
    return found[0][1] if found else None


def read_origin(original: Message | None, *, trace_key: bytes | None) -> Origin:
    if original is None:
        return Origin()
    dkim = []
    for value in header_all(original, "DKIM-Signature"):
        match = _DKIM_D_RE.search(value)
        if match and match.group(1).lower() not in dkim:
            dkim.append(match.group(1).lower())
    # Several stamps (a forged one added before ours?): a verified one wins.
    traces = [t for v in header_all(original, HEADER) if (t := verify_trace(v, trace_key))]
    trace = next((t for t in traces if t.verified), traces[0] if traces else None)
    message_id = header(original, "Message-ID").strip() or None
    return Origin(
        message_id=message_id,
        dkim_domains=tuple(dkim),
        postfix_queue_id=_postfix_queue_id(header_all(original, "Received")),
        customer=trace.customer if trace else None,
        login=trace.login if trace else None,
        trace_queue_id=trace.queue_id if trace else None,
        trace_time=trace.time if trace else None,
        trace_verified=bool(trace and trace.verified),
        feedback_id=header(original, "Feedback-ID") or None,
    )
