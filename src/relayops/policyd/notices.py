"""Which notice is due when, and how a notice request becomes a mail (pure; no I/O, no clock).

Kinds (templates `policies/notifications/<kind>.txt`, shipped in policy.json):

- warning, limit: the day's count reaches the threshold / the limit; sent
  from the charge path (rules.py).
- resumed: a customer's local day begins after a day that reached its limit;
  the daemon's day sweep (`days_started`), or a reload that moves the customer's
  time zone into a later date (`days_moved`: its counters then start the new day).
- suspended, terminated: a deploy changes a customer's status to that; the
  daemon at start and on SIGHUP swaps each customer's status into the store
  and announces the changes (`status_notices`).
- complaint, disabled, reenabled: feedback-loop tooling asks with a
  `NoticeRequest` through the store's outbox (outbox.py).

Every notice is claimed once in the store where it must not repeat (per
customer, local day and kind), so several daemons sharing a store send one.

`NoticeRequest` is the small typed interface other code uses: it names the
kind, the customer and the kind's context fields; the daemon adds what it knows
(name, contact, local day, time zone) and renders the rules' template.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from relayops.policyd.rules import Customer, Notice, Rules, _one_line, day_start

KINDS: Final = (
    "warning",
    "limit",
    "resumed",
    "complaint",
    "disabled",
    "reenabled",
    "suspended",
    "terminated",
)
# Filled in by the daemon for every kind.
COMMON_FIELDS: Final = frozenset({"customer", "name", "day", "timezone"})
# What a NoticeRequest's context must supply, exactly (no more, no less).
CONTEXT_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "complaint": frozenset({"feedback_type", "recipient", "arrival_date"}),
    "disabled": frozenset({"reason"}),
    "reenabled": frozenset(),
    "suspended": frozenset({"reason"}),
    "terminated": frozenset({"reason"}),
}
REQUESTABLE: Final = frozenset(CONTEXT_FIELDS)
# The placeholders each kind's template may use (the loader validates against this).
TEMPLATE_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "warning": COMMON_FIELDS | {"limit", "count", "percent", "resume_at"},
    "limit": COMMON_FIELDS | {"limit", "count", "percent", "resume_at"},
    "resumed": COMMON_FIELDS | {"limit"},
    **{kind: COMMON_FIELDS | fields for kind, fields in CONTEXT_FIELDS.items()},
}
# A complaint report with its quoted original; larger ones are refused, not cut
# (a cut message/rfc822 part is not the original any more).
MAX_ATTACHMENT: Final = 10 * 1024 * 1024
_MAX_CONTEXT_VALUE: Final = 200  # what _one_line keeps of a quoted value


class NoticeError(ValueError):
    """A notice request cannot be sent as it is; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class NoticeRequest:
    """A notice another component asks the daemon to send.

    >>> NoticeRequest("disabled", "acme", {"reason": "complaint from example.org"})

    `context` holds exactly the kind's CONTEXT_FIELDS; `attachment` is the
    original report (raw RFC 5322 bytes) for a `complaint`, and None otherwise.
    """

    kind: str
    customer: str
    context: Mapping[str, str] = field(default_factory=dict)
    attachment: bytes | None = None

    def to_json(self) -> str:
        """The outbox form (the attachment base64-encoded)."""
        return json.dumps(
            {
                "kind": self.kind,
                "customer": self.customer,
                "context": dict(self.context),
                "attachment": (
                    None
                    if self.attachment is None
                    else base64.b64encode(self.attachment).decode("ascii")
                ),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> NoticeRequest:
        """Parse the outbox form; NoticeError for anything that is not one."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NoticeError(f"notice request is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise NoticeError("notice request is not a JSON object")
        kind, customer = data.get("kind"), data.get("customer")
        context, attachment = data.get("context", {}), data.get("attachment")
        if not isinstance(kind, str) or not isinstance(customer, str):
            raise NoticeError("notice request: kind and customer must be strings")
        if not isinstance(context, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in context.items()
        ):
            raise NoticeError("notice request: context must map strings to strings")
        raw: bytes | None = None
        if attachment is not None:
            if not isinstance(attachment, str):
                raise NoticeError("notice request: attachment must be base64 text")
            try:
                raw = base64.b64decode(attachment, validate=True)
            except (binascii.Error, ValueError):
                raise NoticeError("notice request: attachment is not valid base64") from None
        return cls(kind, customer, context, raw)


def check_request(request: NoticeRequest, rules: Rules) -> Customer:
    """The request's customer if the request can be sent, else NoticeError saying why."""
    kind = request.kind
    if kind not in REQUESTABLE:
        known = ", ".join(sorted(REQUESTABLE))
        raise NoticeError(f"notice kind {kind!r:.40} cannot be requested; one of: {known}")
    customer = rules.customers.get(request.customer)
    if customer is None:
        raise NoticeError(f"{kind} notice: unknown customer {request.customer!r:.60}")
    given, wanted = set(request.context), CONTEXT_FIELDS[kind]
    if given != wanted:
        missing, extra = sorted(wanted - given), sorted(given - wanted)
        raise NoticeError(
            f"{kind} notice for {customer.id}: context needs exactly "
            f"{sorted(wanted)}; missing {missing}, unexpected {extra}"
        )
    for key, value in request.context.items():
        if len(value) > _MAX_CONTEXT_VALUE:
            raise NoticeError(f"{kind} notice for {customer.id}: context.{key} is too long")
    if kind == "complaint":
        if not request.attachment:
            raise NoticeError(f"complaint notice for {customer.id}: the original report is missing")
        if len(request.attachment) > MAX_ATTACHMENT:
            raise NoticeError(
                f"complaint notice for {customer.id}: report of {len(request.attachment)} "
                f"bytes exceeds {MAX_ATTACHMENT}"
            )
    elif request.attachment is not None:
        raise NoticeError(f"{kind} notice for {customer.id}: only a complaint has an attachment")
    return customer


def render(
    kind: str,
    customer: Customer,
    rules: Rules,
    now: datetime,
    values: Mapping[str, str],
    attachment: bytes | None = None,
    *,
    day: date | None = None,
) -> Notice | None:
    """The notice mail, None when the rules carry no template for `kind` (an older compiler).

    `values` add to (and may not override) the common fields. Context values are
    quoted on one line: they come from outside (complaint reports). `$day` is
    `day`, by default the customer's local date at `now`.
    """
    templates = rules.templates.get(kind)
    if templates is None:
        return None
    day = day or now.astimezone(customer.tz).date()
    fields = {k: _one_line(v) for k, v in values.items()}
    fields |= {
        "customer": customer.id,
        "name": customer.name,
        "day": day.isoformat(),
        "timezone": customer.tz.key,
    }
    subject_t, body_t = templates
    return Notice(
        kind,
        customer.id,
        rules.notify_from,
        customer.contact,
        _one_line(subject_t.safe_substitute(fields)),
        body_t.safe_substitute(fields),
        attachment,
        rules.mailbox(customer.id),
    )


def render_request(request: NoticeRequest, rules: Rules, now: datetime) -> Notice | None:
    """A checked request rendered (NoticeError if it cannot be sent)."""
    customer = check_request(request, rules)
    return render(request.kind, customer, rules, now, request.context, request.attachment)


# ---- status changes on reload --------------------------------------------------------


def status_notices(previous: Mapping[str, str | None], rules: Rules) -> list[tuple[Customer, str]]:
    """(customer, kind) for each customer whose status changed into `suspended` or
    `terminated`, given the status the store knew before (`previous`).

    None (the store has never seen the customer: a first start, a host newly
    serving it) is not a change, so old news is not announced; neither is a
    reason edited while the status stays.
    """
    due: list[tuple[Customer, str]] = []
    for cid in sorted(previous):
        customer, before = rules.customers.get(cid), previous[cid]
        if customer is None or before is None or before == customer.status:
            continue
        if customer.status in ("suspended", "terminated"):
            due.append((customer, customer.status))
    return due


def status_values(customer: Customer) -> dict[str, str]:
    return {"reason": customer.status_reason or "not stated"}


# ---- the day rolls over ------------------------------------------------------------------


def days_started(rules: Rules, since: datetime, until: datetime) -> Iterator[tuple[Customer, date]]:
    """(customer, new local day) for every customer whose local day began in (since, until].

    Walks each customer's day boundaries, so a gap longer than a day (a stopped
    sweep) yields each day once, and a DST change day is handled by day_start.
    """
    for cid in sorted(rules.customers):
        customer = rules.customers[cid]
        day = since.astimezone(customer.tz).date() + timedelta(days=1)
        while (start := day_start(day, customer.tz)) <= until:
            if start > since:
                yield customer, day
            day += timedelta(days=1)


def days_moved(before: Rules, after: Rules, now: datetime) -> Iterator[tuple[Customer, date]]:
    """(customer, new local day) for every customer whose local date at `now` is later
    under `after` than under `before` (a reload changed its time zone eastwards).

    The daemon's counters are keyed by the local day, so such a customer starts a fresh
    day at once: the same "sending resumed" as at midnight. Each date passed over is
    yielded, as `days_started` yields each midnight of a long gap; a move westwards (an
    earlier date) starts no day.
    """
    for cid in sorted(after.customers):
        old = before.customers.get(cid)
        if old is None:
            continue
        customer = after.customers[cid]
        day = now.astimezone(old.tz).date() + timedelta(days=1)
        while day <= now.astimezone(customer.tz).date():
            yield customer, day
            day += timedelta(days=1)


def resumed_values(customer: Customer, day: date) -> dict[str, str]:
    return {"limit": str(customer.limit_on(day))}
