"""policy.json loading and the pure decision functions of the policy daemon.

The decision is split in two pure halves around the one atomic store call:

    step = assess(request, rules, now)          # Verdict (final) or Charge
    outcome = store.charge(step)                # atomic "count if below limit" + flags
    verdict = conclude(step, outcome, rules)    # Verdict (+ notices to mail)

`decide()` chains them for a synchronous store (the in-memory counters the
SQLite store is built on), which is what the unit tests drive with an injected
clock. Nothing here does I/O or reads the clock.

Postfix actions used (access(5), SMTPD_POLICY_README):
- ``DUNNO``: not our call, let the rest of the restriction list decide. Never
  ``OK``, which would short-cut the later restrictions (relay checks).
- ``4NN x.y.z text`` / ``5NN x.y.z text``: an explicit reply code with an
  enhanced status code, for every refusal the customer must understand. A
  ``4NN`` is a temporary failure the client keeps in its queue and retries;
  ``452`` at RCPT is the reply RFC 5321 4.5.3.1.10 reserves for "too many
  recipients, try the rest later". ``DEFER``/``REJECT`` would force 450/554 and
  a generic status code.
- ``DEFER_IF_PERMIT text``: our own trouble (store down, malformed request). It
  defers only if the later restrictions would have permitted the mail, so a
  recipient that is rejected anyway is not kept retrying because of us.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from relayops.policyd.contract import PolicyFile, Template

# Reply texts quote operator-written sentences; an SMTP reply line is at most
# 512 octets including the code (RFC 5321 4.5.3.1.5).
_MAX_QUOTED = 200


class RulesError(Exception):
    """policy.json cannot be used; the message says which file, field and value, and why."""


# The file is validated once per load, never per request, against its public models
# (contract.py, shared with the compiler).


# --------------------------------------------------------------------------------------
# The compiled form the hot path reads


def _one_line(text: str) -> str:
    """Operator text made safe to quote in a one-line SMTP reply / policy answer."""
    if len(text) <= _MAX_QUOTED and text.isprintable() and " ".join(text.split()) == text:
        return text  # already one clean line (the usual case): no pass per character
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= _MAX_QUOTED else cleaned[: _MAX_QUOTED - 3] + "..."


@dataclass(frozen=True, slots=True)
class Stage:
    first_day: date
    last_day: date
    daily_cap: int
    isp_caps: Mapping[str, int]  # ISP class -> that day's cap of its recipients


@dataclass(frozen=True, slots=True)
class Customer:
    """One subscription, resolved; its quota is shared by all its logins."""

    id: str
    name: str
    status: str
    status_reason: str
    tz: ZoneInfo
    daily_quota: int
    warn_ratio: float
    max_message_bytes: int
    contact: str
    domains: frozenset[str]
    warmup: tuple[Stage, ...]
    # Precomputed at load time, not per request:
    status_reply: str  # the 554 reply when status is not "active", else ""
    owned_domains_text: str  # the sender-domain refusal's list of the owned domains
    # The milter's (docs/milter.md):
    plan: str = ""
    from_subdomains: bool = False
    campaigns_allowed: bool = True
    campaign_recipients: int = 50

    def stage_on(self, day: date) -> Stage | None:
        for stage in self.warmup:
            if stage.first_day <= day <= stage.last_day:
                return stage
        return None

    def limit_on(self, day: date) -> int:
        """The day's limit: min(quota, warm-up cap) on a day a stage covers, else the quota."""
        stage = self.stage_on(day)
        return self.daily_quota if stage is None else min(self.daily_quota, stage.daily_cap)


@dataclass(frozen=True, slots=True)
class AntiSpamRules:
    """The ceilings and consequences of policies/antispam.yaml (docs/feedback.md)."""

    complaints: int = 1
    per_messages: int = 3000
    min_volume: int = 3000
    bounce_rate_max: float = 0.05
    on_complaint: str = "disable_pending_review"
    on_breach: str = "suspend"
    window_days: int = 2
    suppress_days: int = 30


@dataclass(frozen=True, slots=True)
class Rules:
    service_name: str
    notify_from: str
    customers: Mapping[str, Customer]
    by_login: Mapping[str, Customer]  # lower-case SASL login -> its subscription
    warning: tuple[string.Template, string.Template]
    limit: tuple[string.Template, string.Template]
    recipient_classes: Mapping[str, str] = field(default_factory=dict)  # domain -> ISP class
    antispam: AntiSpamRules = AntiSpamRules()
    service_domain: str = ""
    # Every notice kind's (subject, body) templates, warning and limit included.
    templates: Mapping[str, tuple[string.Template, string.Template]] = field(default_factory=dict)
    mailbox_domain: str | None = None  # <customer>@mailbox_domain: the IMAP mailbox copy

    def mailbox(self, customer: str) -> str | None:
        """The customer's local IMAP mailbox address, None without a mailbox domain."""
        return f"{customer}@{self.mailbox_domain}" if self.mailbox_domain else None

    # Per customer, the Charge of its current local day (assess()); the one mutable
    # part, filled by the request path, and new with every load (a reload starts empty).
    days: dict[str, _Day] = field(default_factory=dict, compare=False, repr=False)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def parse_rules(data: Any, *, source: str = "policy.json") -> Rules:
    """Validate decoded policy.json and compile it for the hot path (login index, zones)."""
    try:
        model = PolicyFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_loc(err['loc'])}: {err['msg']} (got {err.get('input')!r:.60})"
            for err in exc.errors()
        )
        raise RulesError(f"{source}: {problems}") from None
    customers: dict[str, Customer] = {}
    by_login: dict[str, Customer] = {}
    for cid, raw in model.customers.items():
        status_reason = _one_line(raw.status_reason or "")
        domains = frozenset(d.lower().rstrip(".") for d in raw.domains)
        status_reply = ""
        if raw.status != "active":
            reason = f": {status_reason}" if status_reason else ""
            status_reply = f"554 5.7.1 account {cid} is {raw.status}{reason}"
        customer = Customer(
            id=cid,
            name=raw.name,
            status=raw.status,
            status_reason=status_reason,
            tz=ZoneInfo(raw.timezone),
            daily_quota=raw.daily_quota,
            warn_ratio=raw.warn_ratio,
            max_message_bytes=raw.max_message_bytes,
            contact=raw.contact,
            domains=domains,
            warmup=tuple(
                Stage(s.first_day, s.last_day, s.daily_cap, dict(s.isp_caps)) for s in raw.warmup
            ),
            status_reply=status_reply,
            owned_domains_text=_one_line(", ".join(sorted(domains))) or "one of its domains",
            plan=_one_line(raw.plan),
            from_subdomains=raw.from_subdomains,
            campaigns_allowed=raw.campaigns == "allowed",
            campaign_recipients=raw.campaign_recipients,
        )
        customers[cid] = customer
        for login in raw.logins:
            key = login.lower()
            if key in by_login:
                raise RulesError(
                    f"{source}: customers.{cid}.logins: login {login!r} also belongs to "
                    f"{by_login[key].id!r}; a login belongs to one subscription only"
                )
            by_login[key] = customer
    n = model.notifications
    templates = {
        kind: (string.Template(t.subject), string.Template(t.body))
        for kind, t in n
        if isinstance(t, Template)
    }
    return Rules(
        service_name=model.service.name,
        notify_from=model.service.notify_from,
        customers=customers,
        by_login=by_login,
        warning=(string.Template(n.warning.subject), string.Template(n.warning.body)),
        limit=(string.Template(n.limit.subject), string.Template(n.limit.body)),
        recipient_classes={d.lower().rstrip("."): c for d, c in model.recipient_classes.items()},
        antispam=AntiSpamRules(**model.antispam.model_dump()),
        service_domain=model.service.domain,
        templates=templates,
        mailbox_domain=model.service.mailbox_domain,
    )


def load_rules(path: Path) -> Rules:
    """Read and compile a policy.json file; RulesError says what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RulesError(f"{path}: not valid JSON: {exc}") from None
    return parse_rules(data, source=str(path))


# --------------------------------------------------------------------------------------
# Time


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day, as local time.

    Usually 00:00; where a DST gap swallows midnight (e.g. America/Havana) it is
    the end of the gap. Going through UTC resolves the gap the way the clock does.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).astimezone(tz)


def warn_threshold(limit: int, ratio: float) -> int:
    """Count at which the warning goes out: ceil(ratio * limit), at least 1.

    The epsilon keeps 0.8 * 5000 at 4000 despite binary floating point.
    """
    return max(1, math.ceil(limit * ratio - 1e-9))


@functools.lru_cache(maxsize=8192)
def resume_at(day: date, tz: ZoneInfo) -> datetime:
    """When sending resumes after `day`'s limit: the start of the next local day.

    Cached: every 452 and notice of a customer's day asks the same question, and a
    time-zone conversion per refusal is most of a refusal's cost under a burst.
    """
    return day_start(day + timedelta(days=1), tz)


class _Day:
    """One customer's current local day: the Charge assess() hands out for any instant
    in [start, end) (POSIX seconds), so a request costs a comparison instead of a
    time-zone conversion, a scan of the warm-up stages and a new Charge.

    The day is always found the uncached way (``astimezone``); [start, end) is that
    day's first instant to the next day's. Where a clock change moves local time
    back across midnight the repeated minutes stay on the new day (the uncached
    way would count them to the old one again): no zone in use today does that.
    """

    __slots__ = ("charge", "classes", "end", "start")

    def __init__(
        self, charge: Charge, classes: Mapping[str, Charge], start: float, end: float
    ) -> None:
        self.charge, self.classes, self.start, self.end = charge, classes, start, end


def _day_for(customer: Customer, now: datetime | float, days: dict[str, _Day]) -> _Day:
    """The customer's local day at `now` (cached per customer, see _Day): its Charge and,
    on a warm-up stage with per-class caps, one Charge per capped ISP class."""
    ts = now if isinstance(now, float) else now.timestamp()
    cached = days.get(customer.id)
    if cached is not None and cached.start <= ts < cached.end:
        return cached
    if isinstance(now, float):
        # Whole seconds: rounded to the microsecond, a time 0.5 µs before a midnight would
        # land on the next day here while the cached bounds above kept it on this one
        # (days begin on whole seconds, so flooring never crosses one).
        now = datetime.fromtimestamp(math.floor(now), UTC)
    tz = customer.tz
    day = now.astimezone(tz).date()
    stage = customer.stage_on(day)
    limit = customer.daily_quota if stage is None else min(customer.daily_quota, stage.daily_cap)
    warn_at = warn_threshold(limit, customer.warn_ratio)
    caps = stage.isp_caps if stage is not None else {}
    classes = {isp: Charge(customer, day, limit, warn_at, isp, cap) for isp, cap in caps.items()}
    start = day_start(day, tz).timestamp()
    today = _Day(
        Charge(customer, day, limit, warn_at), classes, start, resume_at(day, tz).timestamp()
    )
    days[customer.id] = today
    return today


# --------------------------------------------------------------------------------------
# Decisions


class Refusal(enum.StrEnum):
    """Why a request was refused (metrics label, log field)."""

    QUOTA = "quota"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    COMPLAINT = "complaint"
    SUPPRESSED = "suppressed"  # the recipient hard-bounced (feedback ledger, suppress.py)
    SENDER_DOMAIN = "sender_domain"
    SIZE = "size"
    ISP_CAP = "isp_cap"
    STORE_ERROR = "store_error"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class Notice:
    """A mail to a customer's contact (and IMAP mailbox), rendered from the rules' templates.

    `kind` is one of notices.KINDS; `attachment` is a message attached as
    message/rfc822 (a complaint's original report); `mailbox` the customer's
    local mailbox address that gets the same message, when the relay has one.
    """

    kind: str
    customer: str
    sender: str
    to: str
    subject: str
    body: str
    attachment: bytes | None = None
    mailbox: str | None = None


class Verdict(NamedTuple):
    """The answer to one request. `action` is what follows ``action=``. A NamedTuple
    for the reason Outcome is one (made for every refused recipient)."""

    action: str
    refusal: Refusal | None = None
    customer: str | None = None
    notices: tuple[Notice, ...] = ()
    count: int | None = None  # type: ignore[assignment]  # shadows tuple.count, unused
    limit: int | None = None


DUNNO = Verdict("DUNNO")


@dataclass(frozen=True, slots=True)
class Charge:
    """One recipient to count against a subscription's day, if below the day's limit."""

    customer: Customer
    day: date
    limit: int
    warn_at: int
    # The recipient's ISP class when the day's warm-up stage caps it, else None; the
    # recipient is counted against both the day's limit and the class's cap, atomically.
    isp_class: str | None = None
    class_limit: int = 0


class ChargeStatus(enum.Enum):
    ACCEPTED = "accepted"  # counted
    OVER_LIMIT = "over_limit"  # not counted: the day's limit is reached
    OVER_CLASS_LIMIT = "over_class_limit"  # not counted: the ISP class's warm-up cap is reached
    FLAGGED = "flagged"  # not counted: complaint suspension flag is set
    UNAVAILABLE = "unavailable"  # the store could not answer


class Outcome(NamedTuple):
    """What the store did with a Charge.

    `count` is the day's count after the call. `warn` / `limit_notice` are true
    for the one call (across all daemons sharing the store) that claimed that
    day's warning / limit notice. Immutable as a tuple: a frozen dataclass's
    __init__ (one object.__setattr__ a field) was 5 % of a request's Python.
    """

    status: ChargeStatus
    count: int = 0  # type: ignore[assignment]  # shadows tuple.count, which nothing calls
    warn: bool = False
    limit_notice: bool = False


# Attribute names we read (SMTPD_POLICY_README).
_STATES_WITH_SENDER = frozenset({"MAIL", "RCPT"})


def _size(request: Mapping[str, str]) -> int:
    value = request.get("size", "")
    return int(value) if value.isdigit() else 0


# Looked up: a customer's senders are few and recur with every recipient (bounded: the
# addresses come from the clients).
@functools.lru_cache(maxsize=4096)
def _sender_domain(sender: str) -> str | None:
    """The ASCII (IDNA) lower-case domain of an address, None if it has none."""
    local, at, domain = sender.rpartition("@")
    if not at or not local or not domain:
        return None
    domain = domain.lower().rstrip(".")
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _recipient_domain(recipient: str) -> str:
    """The recipient's lower-case domain as policy.json writes it ("" if none)."""
    return recipient.rpartition("@")[2].lower().rstrip(".")


def assess(request: Mapping[str, str], rules: Rules, now: datetime | float) -> Verdict | Charge:
    """Everything that needs no counter: a final Verdict, or a Charge to put to the store.

    `now` is an aware datetime or a POSIX timestamp (the daemon's: no datetime is built
    for a request in a day already cached). Counting happens at RCPT only, once per
    recipient.
    """
    login = request.get("sasl_username", "")
    if not login:
        # Not a customer submission: port 25 carries bounces and feedback-loop
        # reports for the service's own domain, which are not sold by quota and
        # which Postfix's own restrictions govern.
        return DUNNO
    customer = rules.by_login.get(login.lower())
    if customer is None:
        # Authenticated by Dovecot but unknown here: the rules on this host are
        # older than the passdb (a deploy in progress). Not ours to judge.
        return DUNNO
    state = request.get("protocol_state", "").upper()
    cid = customer.id
    if customer.status != "active":
        refusal = Refusal.SUSPENDED if customer.status == "suspended" else Refusal.TERMINATED
        return Verdict(customer.status_reply, refusal, cid)
    size = _size(request)
    if size > customer.max_message_bytes:
        return Verdict(
            f"552 5.3.4 message size {size} bytes exceeds the limit of "
            f"{customer.max_message_bytes} bytes for {cid}",
            Refusal.SIZE,
            cid,
        )
    if state in _STATES_WITH_SENDER:
        sender = request.get("sender", "")
        domain = _sender_domain(sender)
        if domain not in customer.domains:
            shown = _one_line(domain or "(none)")
            return Verdict(
                f"553 5.7.1 sender domain {shown} is not registered for {cid}; "
                f"use an address at {customer.owned_domains_text}",
                Refusal.SENDER_DOMAIN,
                cid,
            )
    if state != "RCPT":
        return DUNNO
    today = _day_for(customer, now, rules.days)
    if today.classes:  # a warm-up stage with per-class caps: count against the class too
        isp = rules.recipient_classes.get(_recipient_domain(request.get("recipient", "")))
        if isp is not None:
            classed = today.classes.get(isp)
            if classed is not None:
                return classed
    return today.charge


def _percent(count: int, limit: int) -> int:
    return count * 100 // limit if limit else 100


def _notice(kind: Literal["warning", "limit"], charge: Charge, count: int, rules: Rules) -> Notice:
    customer = charge.customer
    resume = resume_at(charge.day, customer.tz)
    subject_t, body_t = rules.warning if kind == "warning" else rules.limit
    values = {
        "customer": customer.id,
        "name": customer.name,
        "limit": str(charge.limit),
        "count": str(count),
        # The warning names the threshold it is for: with quota credit (credit.py) it may be
        # claimed a few recipients past it, once other daemons' runs are settled.
        "percent": str(_percent(charge.warn_at if kind == "warning" else count, charge.limit)),
        "day": charge.day.isoformat(),
        "resume_at": resume.strftime("%Y-%m-%d %H:%M"),
        "timezone": customer.tz.key,
    }
    return Notice(
        kind,
        customer.id,
        rules.notify_from,
        customer.contact,
        _one_line(subject_t.safe_substitute(values)),
        body_t.safe_substitute(values),
        mailbox=rules.mailbox(customer.id),
    )


def conclude(charge: Charge, outcome: Outcome, rules: Rules, *, fail_open: bool = False) -> Verdict:
    """The answer once the store has counted (or refused, or failed)."""
    customer = charge.customer
    cid = customer.id
    status = outcome.status
    if status is ChargeStatus.UNAVAILABLE:
        if fail_open:
            return Verdict("DUNNO", Refusal.STORE_ERROR, cid)
        return Verdict(
            "DEFER_IF_PERMIT 4.3.0 quota service temporarily unavailable, try again later",
            Refusal.STORE_ERROR,
            cid,
        )
    if status is ChargeStatus.FLAGGED:
        return Verdict(
            f"450 4.7.1 account {cid} is temporarily disabled pending complaint review",
            Refusal.COMPLAINT,
            cid,
        )
    notices: list[Notice] = []
    if outcome.warn:
        notices.append(_notice("warning", charge, outcome.count, rules))
    if outcome.limit_notice:
        notices.append(_notice("limit", charge, outcome.count, rules))
    if status is ChargeStatus.ACCEPTED:
        return Verdict("DUNNO", None, cid, tuple(notices), outcome.count, charge.limit)
    if status is ChargeStatus.OVER_CLASS_LIMIT:
        return Verdict(
            _class_reply(cid, charge.day, charge.class_limit, str(charge.isp_class), customer.tz),
            Refusal.ISP_CAP,
            cid,
            tuple(notices),
            outcome.count,
            charge.class_limit,
        )
    return Verdict(
        _quota_reply(cid, charge.day, charge.limit, customer.daily_quota, customer.tz),
        Refusal.QUOTA,
        cid,
        tuple(notices),
        outcome.count,
        charge.limit,
    )


@functools.lru_cache(maxsize=8192)
def _quota_reply(cid: str, day: date, limit: int, daily_quota: int, tz: ZoneInfo) -> str:
    """The 452 of a customer's day: the same text for every refused recipient that day."""
    resume = resume_at(day, tz)
    what = "daily quota" if limit >= daily_quota else "daily warm-up limit"
    return (
        f"452 4.7.1 {what} of {limit} reached for {cid}; sending resumes at {resume:%H:%M} {tz.key}"
    )


@functools.lru_cache(maxsize=8192)
def _class_reply(cid: str, day: date, class_limit: int, isp_class: str, tz: ZoneInfo) -> str:
    """The 452 of a customer's ISP class reaching its warm-up cap for the day."""
    resume = resume_at(day, tz)
    return (
        f"452 4.7.1 warm-up limit of {class_limit} recipients at ISP class {isp_class} "
        f"reached today for {cid}; sending to it resumes at {resume:%H:%M} {tz.key}"
    )


class SyncCounters(Protocol):
    """A store that answers at once (the in-memory counters)."""

    def charge_now(self, charge: Charge) -> Outcome: ...


def decide(
    request: Mapping[str, str], rules: Rules, counters: SyncCounters, now: datetime
) -> Verdict:
    """assess → count → conclude, for a store that answers synchronously."""
    step = assess(request, rules, now)
    if isinstance(step, Verdict):
        return step
    return conclude(step, counters.charge_now(step), rules)
