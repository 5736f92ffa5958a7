"""`read_report(bytes) -> Report`: the one pure entry point of the feedback reader.

Order of evidence: a complaint (ARF part, Feedback-Type field, JMRP) → an Amazon SES
JSON notification → an RFC 3464 delivery-status part → an MTA's text bounce → an
RFC 3834 auto-reply → other. Never raises: outside mail is data, not a command.
"""

from __future__ import annotations

import re
from dataclasses import replace
from email.message import Message
from email.utils import getaddresses

from relayops.feedback.attribution import original_headers, read_origin
from relayops.feedback.classify import classify, is_hard
from relayops.feedback.complaint import find_complaint
from relayops.feedback.dsn import Dsn, find_dsn, top_report_type
from relayops.feedback.model import Kind, Reason, Recipient, Report
from relayops.feedback.parse import (
    PARSE_ERRORS,
    content_type,
    header,
    header_all,
    parse_bytes,
    part_text,
    walk,
)
from relayops.feedback.plaintext import (
    TextRecipient,
    is_bounce_text,
    listed_recipients,
    notification_text,
)
from relayops.feedback.reply import (
    find_smtp_code,
    find_status,
    reply_excerpt,
    strip_diagnostic_type,
    unfold,
)
from relayops.feedback.ses import find_ses

_MTA_SENDER_RE = re.compile(r"mailer-daemon|post_?master|mail delivery|mail administrator", re.I)
_BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver|returned mail|delivery status notification|failure notice|delivery fail"
    r"|mail delivery (failed|failure|system)|non.?delivery|could not be delivered"
    r"|delivery (has )?failed|warning: (could not send|message)|delayed mail|delivery delayed"
    r"|mail system error|not delivered|rejected:",
    re.I,
)
_AUTO_REPLY_SUBJECT_RE = re.compile(
    r"out of (the )?office|auto(matic)?[ -]?(reply|response|antwort)|autoreply|vacation"
    r"|abwesenheit|absence|^auto:",
    re.I,
)
_TEMPORARY_RE = re.compile(
    r"has been delayed|will (be )?retr|still trying|not yet been delivered|temporar|try again"
    r"|delivery delayed|will continue",
    re.I,
)
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")


def _notification(message: Message) -> tuple[str, str]:
    """(the human-readable notice, text quoted after it) of a bounce.

    The notice is the text/plain parts before any attached original (text/html only
    when there is no text/plain); the original's own text parts are skipped.
    """
    texts: list[str] = []
    html: list[str] = []
    inside_original: set[int] = set()
    for part in walk(message):
        kind = content_type(part)
        if id(part) in inside_original:
            if part.is_multipart():
                inside_original.update(id(p) for p in _children(part))
            continue
        if kind in _ORIGINAL_TYPES or kind.startswith("message/"):
            inside_original.update(id(p) for p in _children(part))
            continue
        if kind == "text/plain" or (
            kind.startswith("multipart/") and isinstance(part.get_payload(), str)
        ):
            # (a multipart whose boundary never occurs is kept as one string: read it)
            texts.append(part_text(part))
        elif kind == "text/html":
            html.append(re.sub(r"<[^>]*>", " ", part_text(part)))
    text = "\n".join(texts) if texts else "\n".join(html)
    return notification_text(text)


def _children(part: Message) -> list[Message]:
    try:
        payload = part.get_payload()
    except PARSE_ERRORS:
        return []
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _permanent(status: str | None, code: str | None, action: str | None, text: str) -> bool:
    """A permanent failure? The enhanced status decides, then the SMTP code, then the
    DSN Action, then the notice's own words."""
    for value in (status, code):
        if value and value[0] in "45":
            return value[0] == "5"
    if action in ("delayed", "relayed", "delivered", "expanded"):
        return False
    if action == "failed":
        return True
    return not _TEMPORARY_RE.search(text)


def _recipient(
    address: str,
    status: str | None,
    reply: str,
    *,
    action: str | None,
    notice: str,
    context: str = "",
) -> Recipient:
    reply = unfold(reply)
    stated = find_status(reply)
    # The remote's own status (in its reply) over the reporting MTA's Status field
    # when both say the same class: the field is often a generic 5.0.0 or the
    # reporter's mapping (4.4.7 "expired" over the remote's 4.4.5 "disk full").
    generic_over_specific = bool(
        stated and status and stated.endswith(".0.0") and not status.endswith(".0.0")
    )
    if stated and (status is None or (stated[0] == status[0] and not generic_over_specific)):
        status = stated
    code = find_smtp_code(reply)
    excerpt = reply_excerpt(reply) if reply else ""
    # Classify the remote reply itself when it is there; the MTA's prose around it
    # ("could not be delivered… may be blacklisted…") only when it is all we have.
    has_code = bool(find_status(excerpt) or find_smtp_code(excerpt))
    reason = classify(excerpt if has_code else reply, status, context=context + "\n" + reply)
    if action in ("delivered", "relayed", "expanded") and (not status or status[0] == "2"):
        reason = Reason.DELIVERED
    if reason is Reason.UNKNOWN and action != "failed" and re.search(r"delay", notice, re.I):
        reason = Reason.EXPIRED  # a delay warning that gives no cause
    permanent = _permanent(status, code, action, notice)
    return Recipient(
        address=address,
        status=status,
        smtp_code=code,
        reply=excerpt,
        reason=reason,
        hard=reason is not Reason.DELIVERED and is_hard(reason, permanent=permanent),
        action=action,
    )


def _addresses(message: Message | None, *names: str) -> list[str]:
    if message is None:
        return []
    values = [v for name in names for v in header_all(message, name)]
    try:
        pairs = getaddresses(values)
    except PARSE_ERRORS:
        return []
    return [addr for _, addr in pairs if "@" in addr]


def _from_dsn(dsn: Dsn, notice: str) -> tuple[Recipient, ...]:
    listed = {r.address.lower(): r.block for r in listed_recipients(notice)}
    out = []
    for item in dsn.recipients:
        reply = item.diagnostic
        text_block = listed.get(item.address.lower(), "") or listed.get(
            (item.final or "").lower(), ""
        )
        if not reply or not (find_smtp_code(reply) or find_status(reply)):
            # Sendmail/Exchange often leave Diagnostic-Code empty or bare: the notice
            # carries the remote reply.
            if text_block and (find_smtp_code(text_block) or find_status(text_block)):
                reply = (reply + " " + text_block).strip()
            elif not reply:
                reply = text_block or ""
        recipient = _recipient(
            item.address,
            item.status,
            reply,
            action=item.action,
            notice=notice,
            # A refusal at MAIL FROM or DATA concerns every recipient: the whole notice
            # is context when it has no block of its own about this one.
            context=text_block or notice,
        )
        out.append(replace(recipient, final_recipient=item.final))
    return tuple(out)


def _from_text(notice: str, message: Message, original: Message | None) -> tuple[Recipient, ...]:
    # The bounce's From (the MTA) is never a failed recipient; its To (the notified
    # sender) only when nothing else is listed (people do mail themselves).
    sender = frozenset(a.lower() for a in _addresses(message, "From"))
    notified = frozenset(a.lower() for a in _addresses(message, "To"))
    found = listed_recipients(notice, excluded=sender | notified)
    if not found:
        found = listed_recipients(notice, excluded=sender)
    if not found:
        # Nothing listed (Exim local deliveries: "save to …"): Exim's X-Failed-Recipients
        # header, else the original's recipients.
        fallback = _addresses(message, "X-Failed-Recipients") or _addresses(original, "To", "Cc")
        found = [
            TextRecipient(address=a, block=notice) for a in fallback if a.lower() not in sender
        ]
    recipients = []
    for item in found:
        block = item.block
        if not (find_status(block) or find_smtp_code(block)):
            # Gmail-style: the address, then the reply further down for all recipients.
            block = block + "\n" + notice if len(found) == 1 else block
        recipients.append(_recipient(item.address, None, block, action=None, notice=notice))
    return tuple(recipients)


def _is_auto_reply(message: Message) -> bool:
    auto = header(message, "Auto-Submitted").lower()
    if auto.startswith("auto-replied") or header(message, "X-Autoreply"):
        return True
    if header(message, "X-Autorespond") or header(message, "Precedence").lower() == "auto_reply":
        return True
    return _AUTO_REPLY_SUBJECT_RE.search(header(message, "Subject")) is not None


def read_report(data: bytes, *, trace_key: bytes | None = None) -> Report:
    """Read one message (raw bytes) into a `Report`; never raises on any input.

    `trace_key`: the service key that verifies `X-Relayops-Trace` stamps (None: every
    stamp is reported unverified).
    """
    parsed = parse_bytes(data)
    message = parsed.message
    notice, quoted = _notification(message)
    original = original_headers(message, quoted, notice)
    origin = read_origin(original, trace_key=trace_key)
    report = Report(kind=Kind.OTHER, origin=origin, truncated=parsed.truncated)
    report_type = top_report_type(message)

    complaint = find_complaint(message, report_type=report_type, notice=notice)
    if complaint is not None:
        # The complainant: ARF's Original-Rcpt-To, else the original's To (often redacted).
        addresses = complaint.recipients or tuple(_addresses(original, "To"))
        recipients = tuple(
            Recipient(a, None, None, "", Reason.COMPLAINT, hard=False) for a in addresses
        )
        return replace(
            report,
            kind=Kind.COMPLAINT,
            feedback_type=complaint.feedback_type,
            recipients=recipients,
        )

    ses = find_ses(notice) if "notificationType" in notice else None
    if ses is not None:
        recipients = tuple(
            _recipient(
                r.address,
                r.status,
                strip_diagnostic_type(r.diagnostic),
                action=r.action,
                notice="",
            )
            for r in ses.recipients
        )
        if ses.type == "Complaint":
            recipients = tuple(
                replace(r, reason=Reason.COMPLAINT, hard=False, status=None) for r in recipients
            )
            return replace(
                report, kind=Kind.COMPLAINT, feedback_type=ses.feedback_type, recipients=recipients
            )
        kind = Kind.OTHER if ses.type == "Delivery" else Kind.BOUNCE
        return replace(report, kind=kind, recipients=recipients)

    dsn = find_dsn(message, text=notice + "\n" + quoted)
    if dsn is not None and dsn.recipients:
        recipients = _from_dsn(dsn, notice)
        origin = replace(origin, reporting_queue_id=dsn.reporting_queue_id)
        failed = [r for r in recipients if r.reason is not Reason.DELIVERED]
        return replace(
            report,
            kind=Kind.BOUNCE if failed else Kind.OTHER,
            recipients=recipients,
            origin=origin,
        )

    sender = header(message, "From")
    subject = header(message, "Subject")
    looks_bounce = (
        bool(_MTA_SENDER_RE.search(sender) or _BOUNCE_SUBJECT_RE.search(subject))
        or report_type == "delivery-status"
    )
    if looks_bounce or is_bounce_text(notice):
        recipients = _from_text(notice, message, original)
        if recipients or looks_bounce:
            return replace(report, kind=Kind.BOUNCE, recipients=recipients)
    if _is_auto_reply(message):
        return replace(report, kind=Kind.AUTO_REPLY)
    return report
