"""What reading one bounce or complaint report yields: typed, immutable, JSON-ready.

Frozen dataclasses rather than pydantic models: these are built by our own code
from already-parsed mail, never validated from outside input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What a message is, as far as a sender's list hygiene is concerned."""

    COMPLAINT = "complaint"  # an ARF / feedback-loop report (RFC 5965) or a JMRP report
    BOUNCE = "bounce"  # a failed or delayed delivery (RFC 3464 DSN or an MTA's own text)
    AUTO_REPLY = "auto-reply"  # vacation / out-of-office (RFC 3834 Auto-Submitted)
    OTHER = "other"  # anything else, including success DSNs and garbage


class Reason(StrEnum):
    """Why a recipient failed; see `classify.py` for the tables and docs/feedback.md."""

    USER_UNKNOWN = "user-unknown"  # hard: the mailbox does not exist
    DOMAIN_UNKNOWN = "domain-unknown"  # hard: no such domain, or it accepts no mail (null MX)
    MOVED = "moved"  # hard: the address has moved (RFC 3463 x.1.6)
    MAILBOX_FULL = "mailbox-full"
    MAILBOX_DISABLED = "mailbox-disabled"  # suspended / inactive account: may come back
    REPUTATION = "reputation-block"  # the sending IP/domain is blocked (DNSBL, warm-up, PTR)
    AUTH_FAILURE = "auth-failure"  # SPF / DKIM / DMARC failed
    POLICY = "policy-block"  # the receiver's local policy refuses the message or sender
    SPAM_CONTENT = "spam-content"  # the content was judged spam or a virus
    TOO_BIG = "message-too-big"
    RATE_LIMITED = "rate-limited"  # too many messages / connections: slow down
    EXPIRED = "expired"  # the queue lifetime ran out
    NETWORK = "network-error"  # DNS, connection, routing, TLS trouble
    SYSTEM = "system-error"  # the receiver's own fault (disk, mailer program, config)
    PROTOCOL = "protocol-error"  # SMTP syntax / RFC 5322 non-compliance
    DELIVERED = "delivered"  # a success DSN
    COMPLAINT = "complaint"  # the recipient reported the message (ARF)
    UNKNOWN = "unknown"


HARD_REASONS = frozenset({Reason.USER_UNKNOWN, Reason.DOMAIN_UNKNOWN, Reason.MOVED})


@dataclass(frozen=True)
class Recipient:
    """One recipient a report is about."""

    address: str
    status: str | None  # RFC 3463 enhanced status, e.g. "5.1.1"
    smtp_code: str | None  # the remote SMTP reply code, e.g. "550"
    reply: str  # the remote reply text (or the reporting MTA's diagnostic), unfolded
    reason: Reason
    hard: bool  # the address itself is dead: suppress it
    action: str | None = None  # RFC 3464 Action (failed, delayed, delivered…) when stated
    final_recipient: str | None = None  # RFC 3464 Final-Recipient when it differs from address


@dataclass(frozen=True)
class Origin:
    """Whose message it was: read from the original message inside the report."""

    message_id: str | None = None
    dkim_domains: tuple[str, ...] = ()
    postfix_queue_id: str | None = None  # from the relay's Received line in the original
    reporting_queue_id: str | None = None  # X-Postfix-Queue-ID of the MTA that bounced
    customer: str | None = None
    login: str | None = None
    trace_queue_id: str | None = None
    trace_time: int | None = None
    trace_verified: bool = False
    feedback_id: str | None = None  # Gmail's Feedback-ID header, as found (not trusted)


@dataclass(frozen=True)
class Report:
    """The reading of one message."""

    kind: Kind
    feedback_type: str | None = None  # RFC 5965 Feedback-Type, lower-cased
    recipients: tuple[Recipient, ...] = ()
    origin: Origin = field(default_factory=Origin)
    truncated: bool = False  # the input was longer than the parse cap

    def to_json(self) -> dict[str, Any]:
        """A plain dict for `emit_json` (enums as their values)."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["recipients"] = [{**asdict(r), "reason": r.reason.value} for r in self.recipients]
        data["origin"]["dkim_domains"] = list(self.origin.dkim_domains)
        return data
