"""Amazon SES notifications (SNS e-mail: a JSON body with notificationType).

Read with the stdlib JSON decoder; SNS mails are sometimes folded or cut, so
when the JSON does not decode the recipient objects are picked out one by one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_TYPE_RE = re.compile(r'"notificationType"\s*:\s*"(Bounce|Complaint|Delivery)"')
_RCPT_RE = re.compile(r'\{\s*"emailAddress"\s*:\s*"([^"]+)"([^{}]*)\}')
_FIELD_RE = re.compile(r'"(status|diagnosticCode|action|complaintFeedbackType)"\s*:\s*"([^"]*)"')


@dataclass(frozen=True)
class SesRecipient:
    address: str
    status: str | None
    diagnostic: str
    action: str | None


@dataclass(frozen=True)
class SesNotification:
    type: str  # Bounce | Complaint | Delivery
    recipients: tuple[SesRecipient, ...]
    feedback_type: str | None


def _from_json(start: int, text: str) -> dict[str, Any] | None:
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _sns_message(text: str) -> str | None:
    """The `Message` string of an SNS envelope (`{"Type": "Notification", …,
    "Message": "{\\"notificationType\\": …}"}`), whose JSON is escaped inside it."""
    brace = text.find("{")
    data = _from_json(brace, text) if brace >= 0 else None
    message = data.get("Message") if data else None
    return message if isinstance(message, str) else None


def find_ses(text: str) -> SesNotification | None:
    match = _TYPE_RE.search(text)
    if match is None:
        inner = _sns_message(text) if '"Message"' in text else None
        if inner is None and '\\"notificationType\\"' in text:
            # An envelope whose JSON does not decode (folded by a mail system): unescape
            # the inner quotes and let the field-by-field fallback read it.
            inner = text.replace('\\"', '"')
        return find_ses(inner) if inner and _TYPE_RE.search(inner) else None
    kind = match.group(1)
    brace = text.rfind("{", 0, match.start())
    data = _from_json(brace, text) if brace >= 0 else None
    recipients: list[SesRecipient] = []
    feedback: str | None = None
    if data is not None:
        section = data.get(kind.lower(), {})
        section = section if isinstance(section, dict) else {}
        key = {"Bounce": "bouncedRecipients", "Complaint": "complainedRecipients"}.get(kind)
        for item in section.get(key, []) if key else []:
            if isinstance(item, dict) and isinstance(item.get("emailAddress"), str):
                recipients.append(
                    SesRecipient(
                        address=item["emailAddress"],
                        status=str(item["status"]) if item.get("status") else None,
                        diagnostic=str(item.get("diagnosticCode") or ""),
                        action=str(item["action"]) if item.get("action") else None,
                    )
                )
        if kind == "Delivery":
            for address in section.get("recipients", []):
                if isinstance(address, str):
                    smtp = str(section.get("smtpResponse") or "")
                    recipients.append(SesRecipient(address, None, smtp, "delivered"))
        raw_type = section.get("complaintFeedbackType")
        feedback = raw_type if isinstance(raw_type, str) else None
    else:
        for found in _RCPT_RE.finditer(text[match.start() :]):
            fields = dict(_FIELD_RE.findall(found.group(2)))
            recipients.append(
                SesRecipient(
                    address=found.group(1),
                    status=fields.get("status") or None,
                    diagnostic=fields.get("diagnosticCode", ""),
                    action=fields.get("action") or None,
                )
            )
        fb = _FIELD_RE.search(text[match.start() :])
        feedback = fb.group(2) if fb and fb.group(1) == "complaintFeedbackType" else None
    if kind == "Complaint":
        feedback = (feedback or "abuse").lower()
    return SesNotification(type=kind, recipients=tuple(recipients), feedback_type=feedback)
