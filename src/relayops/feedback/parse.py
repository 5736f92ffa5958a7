"""MIME plumbing: bytes → a message, its text, its report parts and the original message.

The standard `email` package does the parsing (policy compat32: it never raises on
malformed headers and keeps raw values, which matters for mail quoted back by
arbitrary MTAs). Input is capped at `MAX_PARSE_BYTES`: the report parts come first
in every real bounce, and a 50 MB original attached after them is not worth reading.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

MAX_PARSE_BYTES = 2 * 1024 * 1024  # report parts + original headers fit many times over
MAX_PARTS = 200  # a report with more MIME parts than this is not a report
MAX_TEXT_CHARS = 200_000  # per decoded text part

# Exceptions the email package is known to raise on hostile input (bad charsets,
# broken encodings, odd header values); we degrade to "no text" instead.
PARSE_ERRORS = (
    LookupError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    UnicodeError,
    AssertionError,
    email.errors.MessageError,
)


@dataclass(frozen=True)
class Parsed:
    message: Message
    truncated: bool


def parse_bytes(data: bytes) -> Parsed:
    """Parse at most `MAX_PARSE_BYTES` of `data`; never raises."""
    truncated = len(data) > MAX_PARSE_BYTES
    head = data[:MAX_PARSE_BYTES]
    # Normalise CR-only and CRLF line ends: the parser splits on both, but the
    # plain-text heuristics downstream assume "\n".
    head = head.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        message = email.message_from_bytes(head, policy=email.policy.compat32)
    except PARSE_ERRORS:
        message = Message()
    return Parsed(message=message, truncated=truncated)


def header(message: Message, name: str) -> str:
    """A header's value as text, unfolded, '' when absent or undecodable."""
    try:
        value = message.get(name)
    except PARSE_ERRORS:
        return ""
    if value is None:
        return ""
    return re.sub(r"\s+", " ", str(value)).strip()


def header_all(message: Message, name: str) -> list[str]:
    try:
        values = message.get_all(name) or []
    except PARSE_ERRORS:
        return []
    return [re.sub(r"\s+", " ", str(v)).strip() for v in values]


def walk(message: Message) -> Iterator[Message]:
    """Every part, depth first, at most `MAX_PARTS` of them."""
    try:
        for count, part in enumerate(message.walk()):
            if count >= MAX_PARTS:
                return
            yield part
    except PARSE_ERRORS:
        return


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except PARSE_ERRORS:
        return "text/plain"


def part_text(part: Message) -> str:
    """A non-multipart part's decoded text (transfer encoding and charset), capped."""
    try:
        payload = part.get_payload(decode=True)
    except PARSE_ERRORS:
        payload = None
    if isinstance(payload, bytes):
        charset = "utf-8"
        try:
            charset = part.get_content_charset() or "utf-8"
            text = payload.decode(charset, errors="replace")
        except PARSE_ERRORS:
            text = payload.decode("utf-8", errors="replace")
    else:
        raw = part.get_payload()
        text = raw if isinstance(raw, str) else ""
    return text[:MAX_TEXT_CHARS]


def raw_payload_text(part: Message) -> str:
    """A part's body as text without transfer decoding: for message/* parts that the
    parser keeps as sub-messages, their flattened text."""
    try:
        payload = part.get_payload()
    except PARSE_ERRORS:
        return ""
    if isinstance(payload, str):
        return payload[:MAX_TEXT_CHARS]
    if isinstance(payload, list):
        chunks: list[str] = []
        for sub in payload:
            if isinstance(sub, Message):
                try:
                    chunks.append(sub.as_string())
                except PARSE_ERRORS:
                    continue
        return "\n".join(chunks)[:MAX_TEXT_CHARS]
    return ""


def field_blocks(text: str) -> list[dict[str, str]]:
    """RFC 3464 / RFC 5965 field blocks ('Name: value' lines, folded lines joined,
    blocks separated by blank lines); names lower-cased, first occurrence wins,
    repeated names joined by '\\n' (ARF repeats Original-Rcpt-To)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.replace("\r", "").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, None
            continue
        if line[:1] in (" ", "\t") and last is not None:
            current[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9-]{1,60}", name.strip()):
            last = None
            continue
        key = name.strip().lower()
        value = value.strip()
        if key in current:
            current[key] += "\n" + value
            last = None
        else:
            current[key] = value
            last = key
    if current:
        blocks.append(current)
    return blocks
