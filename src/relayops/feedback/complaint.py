"""Complaint reports: RFC 5965 ARF, and Microsoft's JMRP (no ARF part, but the quoted
message carries X-HmXmrOriginalRecipient)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from relayops.feedback.parse import content_type, field_blocks, part_text, raw_payload_text, walk

_FEEDBACK_TYPE_RE = re.compile(r"^Feedback-Type:[ \t]*([A-Za-z0-9-]+)", re.MULTILINE | re.I)
_JMRP_RE = re.compile(r"^X-HmXmrOriginalRecipient:[ \t]*<?([^\s>]+)", re.MULTILINE | re.I)


@dataclass(frozen=True)
class Complaint:
    feedback_type: str
    recipients: tuple[str, ...]  # Original-Rcpt-To (the complainant), when given


def _rcpts(fields: dict[str, str]) -> tuple[str, ...]:
    values = fields.get("original-rcpt-to", "") or fields.get("removal-recipient", "")
    out = [v.strip().strip("<>").strip() for v in values.split("\n")]
    return tuple(v for v in out if "@" in v)


def find_complaint(message: Message, *, report_type: str, notice: str) -> Complaint | None:
    """The complaint this message reports, or None.

    `notice` is the report's own text (not the quoted original's): a `Feedback-Type:`
    line there makes a complaint even without a feedback-report part; one in a
    returned message's body does not."""
    for part in walk(message):
        if content_type(part) == "message/feedback-report":
            fields: dict[str, str] = {}
            for block in field_blocks(raw_payload_text(part) or part_text(part)):
                fields.update({k: v for k, v in block.items() if k not in fields})
            kind = fields.get("feedback-type", "").split("\n")[0].strip().lower()
            return Complaint(feedback_type=kind or "abuse", recipients=_rcpts(fields))
    match = _FEEDBACK_TYPE_RE.search(notice)
    if report_type == "feedback-report" or match:
        fields = {}
        for block in field_blocks(notice):
            fields.update({k: v for k, v in block.items() if k not in fields})
        kind = match.group(1).lower() if match else "abuse"
        return Complaint(feedback_type=kind, recipients=_rcpts(fields))
    for part in walk(message):
        if content_type(part) in ("message/rfc822", "text/rfc822-headers"):
            found = _JMRP_RE.search(raw_payload_text(part))
            if found:
                return Complaint(feedback_type="abuse", recipients=(found.group(1),))
    return None
