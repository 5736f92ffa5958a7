"""What a report does, as policies/antispam.yaml says: report + policy + figures → actions.

Pure: no clock (``now`` is a parameter), no store. `ingest.py` reads the figures,
applies the `Decision` to the ledger and queues its notices.

Notices go one way, the daemon's (policyd/notices.py): the customer's `complaint`
(the report attached) and `disabled` are `NoticeRequest`s for the store's outbox,
which the policy daemon renders from policy.json's templates and sends to the
contact address and the customer's IMAP mailbox. What the operator must look at
(a complaint, a proposed suspension, a bounce rate over the ceiling) is an
`OperatorNote`: logged by the ingester as ``event=operator_attention`` and visible
in `relayops feedback status` and the feedback metrics; `feedback propose` turns the
breaches into suspension patches.

Only a report whose `X-Relayops-Trace` stamp verified is attributed to a customer;
anything else (garbage, a report about a message we never sent, a stamp that does
not verify — a forged report for another customer) is recorded for review and does
nothing to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from relayops.feedback.model import Kind, Reason, Report
from relayops.policyd.ledger import BLOCK, COMPLAINT, HARD, SOFT, Tally
from relayops.policyd.notices import MAX_ATTACHMENT, NoticeRequest
from relayops.policyd.rules import AntiSpamRules

# Reasons that are about the sender (IP, domain, content), not the recipient.
BLOCK_REASONS = frozenset(
    {Reason.REPUTATION, Reason.POLICY, Reason.AUTH_FAILURE, Reason.SPAM_CONTENT}
)
# RFC 3464 actions that are not a failure (a delay is not final: counted when it fails).
_NOT_FAILED = frozenset({"delivered", "relayed", "expanded", "delayed"})


@dataclass(frozen=True)
class OperatorNote:
    """Something the operator must look at (logged; no mail)."""

    kind: str  # complaint | suspension-proposed | bounce-rate
    customer: str
    why: str


@dataclass(frozen=True)
class Decision:
    customer: str | None  # the verified customer, None when unattributed
    counts: dict[str, int] = field(default_factory=dict)  # complaint/hard/soft/block
    suppress: tuple[str, ...] = ()  # lower-case addresses (hard bounces)
    disable: str | None = None  # complaint flag reason
    suspend: str | None = None  # status_reason of a proposed suspension
    notices: tuple[NoticeRequest, ...] = ()  # to the customer, through the daemon's outbox
    operator: tuple[OperatorNote, ...] = ()
    unattributed: str | None = None  # why nothing was done, when nothing was


def attribution(report: Report) -> tuple[str | None, str | None]:
    """(customer, None) for a verified stamp, else (None, why not)."""
    origin = report.origin
    if origin.customer and origin.trace_verified:
        return origin.customer, None
    if origin.customer:
        return None, f"unverified X-Relayops-Trace stamp naming {origin.customer!r}"
    return None, "no X-Relayops-Trace stamp (not a message we can attribute)"


def tally_counts(report: Report) -> tuple[dict[str, int], tuple[str, ...]]:
    """What the report adds to the figures, and the hard-bounced addresses."""
    if report.kind is Kind.COMPLAINT:
        return ({COMPLAINT: 1} if report.feedback_type == "abuse" else {}), ()
    if report.kind is not Kind.BOUNCE:
        return {}, ()
    counts: dict[str, int] = {}
    hard: list[str] = []
    for r in report.recipients:
        if (r.action or "").lower() in _NOT_FAILED or r.reason is Reason.DELIVERED:
            continue
        if r.hard:
            kind = HARD
            address = r.address.strip().lower()
            if "@" in address and address not in hard:
                hard.append(address)
        elif r.reason in BLOCK_REASONS:
            kind = BLOCK
        else:
            kind = SOFT
        counts[kind] = counts.get(kind, 0) + 1
    return counts, tuple(hard)


def over(numerator: int, denominator: int, ceiling_num: int, ceiling_den: int) -> bool:
    """numerator/denominator > ceiling_num/ceiling_den, in integers (no float at the edge)."""
    return numerator * ceiling_den > ceiling_num * denominator


def decide(
    report: Report,
    policy: AntiSpamRules,
    before: Tally,
    *,
    now: datetime,
    original: bytes = b"",
) -> Decision:
    """The actions for one report, given the customer's figures before it (`before`)."""
    customer, why = attribution(report)
    if customer is None:
        return Decision(None, unattributed=why)
    counts, hard = tally_counts(report)
    after = before.plus(counts)
    day = now.astimezone(UTC).date().isoformat()
    notices: list[NoticeRequest] = []
    operator: list[OperatorNote] = []
    disable = suspend = None
    recipient = report.recipients[0].address if report.recipients else "(redacted)"
    about = (
        f"message {report.origin.message_id or '(no Message-ID)'} of login "
        f"{report.origin.login or '?'} (queue id {report.origin.trace_queue_id or '?'}) "
        f"to {recipient}"
    )
    if counts.get(COMPLAINT):
        feedback_type = report.feedback_type or "abuse"
        context = {"feedback_type": feedback_type, "recipient": recipient, "arrival_date": day}
        # The report goes to the customer as received (the spool keeps at most the
        # reader's cap of it, well under the notice's attachment limit).
        notices.append(NoticeRequest("complaint", customer, context, original[:MAX_ATTACHMENT]))
        operator.append(OperatorNote("complaint", customer, f"{feedback_type}: {about}"))
        if policy.on_complaint == "disable_pending_review":
            disable = f"spam complaint on {day} about a message to {recipient}"
        accepted = after.accepted
        if accepted >= policy.min_volume and over(
            after.complaint, accepted, policy.complaints, policy.per_messages
        ):
            figures = (
                f"{after.complaint} complaints for {accepted} accepted recipients over "
                f"{policy.window_days} day(s), above the ceiling of {policy.complaints} per "
                f"{policy.per_messages}"
            )
            operator.append(OperatorNote("suspension-proposed", customer, figures))
            if policy.on_breach == "suspend":
                suspend = f"complaint rate: {figures}"
                disable = disable or f"complaint rate breach on {day}"
        if disable is not None:
            notices.append(NoticeRequest("disabled", customer, {"reason": disable}))
    if (
        counts.get(HARD)
        and after.accepted >= policy.min_volume
        and after.hard > policy.bounce_rate_max * after.accepted
    ):
        rate = f"{after.hard} hard bounces for {after.accepted} accepted recipients"
        why = f"{rate}, above {policy.bounce_rate_max:g}"
        operator.append(OperatorNote("bounce-rate", customer, why))
    return Decision(customer, counts, hard, disable, suspend, tuple(notices), tuple(operator))
