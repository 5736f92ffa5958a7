"""Complaint reports as receivers send them, about a message the lab sink received: pure.

Two shapes, as the service meets them:

* `arf_report`: RFC 5965 (Yahoo, Gmail, most feedback loops): multipart/report;
  report-type=feedback-report with a human-readable part, a message/feedback-report
  part (Feedback-Type, User-Agent, Version, Original-Mail-From, Original-Rcpt-To,
  Arrival-Date, Source-IP, Reported-Domain) and the original as message/rfc822.
* `jmrp_report`: Microsoft's JMRP: multipart/mixed whose only part is the original as
  message/rfc822 with `X-HmXmrOriginalRecipient:` (the complainant) put on top.

Everything the report says comes from the stored message (`reported`) and the
arguments: no clock, no randomness, so tests compare bytes.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Literal

Style = Literal["arf", "jmrp"]
# CRLF, and header lines of the returned original kept as they were (not refolded).
POLICY = email.policy.SMTP.clone(refold_source="none")
USER_AGENT = "relayops-lab-fbl/1.0"
# Postfix's Received: `from HELO (NAME [IP])` (RFC 5321 4.4 leaves the form free).
_RECEIVED_IP = re.compile(r"^from\s+\S+\s+\([^)]*\[([0-9A-Fa-f:.]+)\]\)", re.IGNORECASE)


class ReportInputError(ValueError):
    """The stored message lacks what a report must state (a header the sink always adds)."""


@dataclass(frozen=True)
class Reported:
    """What a receiver knows about one message it accepted."""

    raw: bytes  # the message as stored (with the receiver's Return-Path, Delivered-To)
    mail_from: str  # the envelope sender (Return-Path), "" for a bounce
    rcpt_to: str  # the envelope recipient: the person who complains
    source_ip: str  # the relay address that delivered it
    arrival: datetime
    reported_domain: str  # the From: domain the complaint is about
    subject: str


def _received_ip(value: str) -> str | None:
    found = _RECEIVED_IP.search(" ".join(value.split()))
    return found.group(1) if found else None


def reported(raw: bytes) -> Reported:
    """The facts of a message stored by the sink (its first Received: is the sink's own)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    rcpt = str(message.get("Delivered-To", "")).strip()
    if "@" not in rcpt:
        raise ReportInputError("the message has no Delivered-To: (was it stored by the sink?)")
    received = [str(v) for v in message.get_all("Received", [])]
    if not received:
        raise ReportInputError("the message has no Received: header")
    ip = _received_ip(received[0])
    if ip is None:
        raise ReportInputError(f"no client address in Received: {received[0][:120]!r}")
    date_text = received[0].rpartition(";")[2].strip()
    try:
        arrival = email.utils.parsedate_to_datetime(date_text)
    except (TypeError, ValueError) as exc:
        raise ReportInputError(f"no date in Received: {received[0][:120]!r}") from exc
    from_domain = email.utils.parseaddr(str(message.get("From", "")))[1].rpartition("@")[2]
    return Reported(
        raw=raw,
        mail_from=str(message.get("Return-Path", "")).strip().strip("<>"),
        rcpt_to=rcpt,
        source_ip=ip,
        arrival=arrival,
        reported_domain=from_domain.lower(),
        subject=str(message.get("Subject", "")),
    )


def _boundary(message_id: str) -> str:
    """A MIME boundary derived from the report's Message-ID (same input, same bytes)."""
    return "=_report_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]


def _envelope(
    *, reporter: str, to: str, subject: str, date: datetime, message_id: str
) -> EmailMessage:
    report = EmailMessage(policy=POLICY)
    report["From"] = reporter
    report["To"] = to
    report["Subject"] = subject
    report["Date"] = email.utils.format_datetime(date)
    report["Message-ID"] = message_id
    return report


def _part() -> EmailMessage:
    """A body part (EmailMessage for the type checker's `attach`, without MIME-Version)."""
    return EmailMessage(policy=POLICY)


def _done(part: EmailMessage) -> EmailMessage:
    del part["MIME-Version"]  # set_content on an EmailMessage adds it; parts carry none
    return part


def _original(raw: bytes, *, prepend: str = "") -> EmailMessage:
    part = _part()
    original = email.message_from_bytes(prepend.encode() + raw, policy=POLICY)
    part.set_content(original)  # message/rfc822, its header lines as received
    return _done(part)


def feedback_fields(facts: Reported, *, user_agent: str = USER_AGENT) -> str:
    """The message/feedback-report body (RFC 5965 3.1, 3.2), CRLF lines."""
    fields = [
        ("Feedback-Type", "abuse"),
        ("User-Agent", user_agent),
        ("Version", "1"),
        ("Original-Mail-From", f"<{facts.mail_from}>"),
        ("Original-Rcpt-To", f"<{facts.rcpt_to}>"),
        ("Arrival-Date", email.utils.format_datetime(facts.arrival)),
        ("Source-IP", facts.source_ip),
        ("Reported-Domain", facts.reported_domain),
    ]
    return "".join(f"{name}: {value}\r\n" for name, value in fields)


def arf_report(
    facts: Reported,
    *,
    reporter: str,
    to: str,
    date: datetime,
    message_id: str,
    user_agent: str = USER_AGENT,
) -> bytes:
    """An RFC 5965 abuse report about `facts`, as Yahoo's and Gmail's feedback loops send."""
    report = _envelope(
        reporter=reporter, to=to, subject=f"FW: {facts.subject}", date=date, message_id=message_id
    )
    report.set_content(
        "This is an email abuse report for an email message received from IP\n"
        f"{facts.source_ip} on {email.utils.format_datetime(facts.arrival)}.\n"
        "For more information about this format please see\n"
        "https://www.rfc-editor.org/rfc/rfc5965\n",
        cte="7bit",
    )
    report.make_mixed()
    report.set_boundary(_boundary(message_id))
    report.set_type("multipart/report")
    report.set_param("report-type", "feedback-report")
    fields = _part()
    fields.set_content(
        feedback_fields(facts, user_agent=user_agent).encode("ascii"),
        maintype="message",
        subtype="feedback-report",
        cte="7bit",
    )
    report.attach(_done(fields))
    report.attach(_original(facts.raw))
    return report.as_bytes()


def jmrp_report(
    facts: Reported, *, reporter: str, to: str, date: datetime, message_id: str
) -> bytes:
    """A Microsoft JMRP complaint: no feedback-report part; the complainant is named by
    `X-HmXmrOriginalRecipient:` on top of the returned message."""
    report = _envelope(
        reporter=reporter,
        to=to,
        subject=f"complaint about message from {facts.source_ip}",
        date=date,
        message_id=message_id,
    )
    report.make_mixed()
    report.set_boundary(_boundary(message_id))
    report.attach(_original(facts.raw, prepend=f"X-HmXmrOriginalRecipient: {facts.rcpt_to}\r\n"))
    return report.as_bytes()


def complaint(
    facts: Reported, *, style: Style, reporter: str, to: str, date: datetime, message_id: str
) -> bytes:
    """The report `style` names (see the module docstring)."""
    if style == "arf":
        return arf_report(facts, reporter=reporter, to=to, date=date, message_id=message_id)
    return jmrp_report(facts, reporter=reporter, to=to, date=date, message_id=message_id)
