"""RFC 3464 delivery status notifications: the machine-readable recipient blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from relayops.feedback.parse import (
    PARSE_ERRORS,
    content_type,
    field_blocks,
    header,
    raw_payload_text,
    walk,
)
from relayops.feedback.reply import find_status, strip_diagnostic_type, unfold

DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})


@dataclass(frozen=True)
class DsnRecipient:
    address: str  # the address the sender used: Original-Recipient, else Final-Recipient
    final: str | None  # Final-Recipient when it differs (an alias or forward expanded it)
    action: str | None
    status: str | None  # the Status field, when it is a valid RFC 3463 code
    diagnostic: str  # Diagnostic-Code without its type, unfolded ('' when absent)


@dataclass(frozen=True)
class Dsn:
    recipients: tuple[DsnRecipient, ...]
    reporting_queue_id: str | None  # X-Postfix-Queue-ID of the reporting MTA


def _address(value: str) -> str:
    """'rfc822; <a@b>' → 'a@b' (RFC 3464 2.3.2 address-type)."""
    _, sep, rest = value.partition(";")
    address = rest if sep else value
    return address.strip().strip("<>").strip()


def find_dsn(message: Message, *, text: str = "") -> Dsn | None:
    """The first delivery-status part's recipients, else RFC 3464 fields written into
    `text` (a report whose MIME boundary is broken, or an MTA that inlines them)."""
    for part in walk(message):
        if content_type(part) not in DSN_TYPES:
            continue
        dsn = _from_blocks(field_blocks(raw_payload_text(part)))
        if dsn is not None:
            return dsn
    if _INLINE_RE.search(text):
        return _from_blocks(field_blocks(text))
    return None


_INLINE_RE = re.compile(r"^Final-Recipient:\s*\S", re.MULTILINE | re.IGNORECASE)


def _from_blocks(blocks: list[dict[str, str]]) -> Dsn | None:
    per_message: dict[str, str] = {}
    recipients: list[DsnRecipient] = []
    for block in blocks:
        if "final-recipient" not in block and "original-recipient" not in block:
            per_message.update({k: v for k, v in block.items() if k not in per_message})
            continue
        # Suppression concerns the address the sender wrote (RFC 3464 2.3.1), not the
        # mailbox an alias expanded it to.
        original = _address(block.get("original-recipient", ""))
        final = _address(block.get("final-recipient", ""))
        address = original if "@" in original else final
        status_field = block.get("status", "")
        diagnostic = block.get("diagnostic-code", "")
        if not diagnostic:
            # RFC 3464 allows a comment after the status: "4.0.0 (host name lookup failure)"
            diagnostic = status_field.partition("(")[2].rstrip(")")
        recipients.append(
            DsnRecipient(
                address=address,
                final=final if final and final.lower() != address.lower() else None,
                action=(block.get("action") or "").strip().lower() or None,
                status=find_status(status_field),
                diagnostic=unfold(strip_diagnostic_type(diagnostic)),
            )
        )
    if not recipients:
        return None
    queue_id = per_message.get("x-postfix-queue-id", "").strip() or None
    return Dsn(recipients=tuple(recipients), reporting_queue_id=queue_id)


def top_report_type(message: Message) -> str:
    """The report-type parameter of a multipart/report top level ('' otherwise)."""
    if content_type(message) != "multipart/report":
        return ""
    try:
        params = message.get_params(failobj=[], header="content-type") or []
    except PARSE_ERRORS:
        return ""
    for key, value in params:
        if key.lower() == "report-type" and isinstance(value, str):
            return value.strip().lower()
    return header(message, "x-report-type").lower()
