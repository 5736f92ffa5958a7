"""The operator's policies: `policies/*.yaml`."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from relayops.model.customer import Dkim
from relayops.model.fields import DomainName, Email, PositiveInt, Ratio, Slug, Strict

# The relay services we model allow "slightly more than 30 MB" per message.
DEFAULT_MAX_MESSAGE_BYTES = 31_457_280


class Plan(Strict):
    daily_quota: PositiveInt = Field(description="accepted recipients per local day")
    max_daily_quota: PositiveInt | None = Field(
        default=None, description="highest quota_override a customer on this plan may get"
    )
    max_message_bytes: PositiveInt = DEFAULT_MAX_MESSAGE_BYTES
    warn_ratio: Ratio = Field(default=0.8, description="share of the limit that sends a warning")
    dedicated_ip: bool = Field(
        default=False, description="whether the plan may have a dedicated IP"
    )
    from_subdomains: bool = Field(
        default=False,
        description="whether the From: header may name a subdomain of the customer's domains "
        "(news.acme.example for acme.example); otherwise exactly one of them",
    )
    campaigns: Literal["allowed", "forbidden"] = Field(
        default="allowed",
        description="whether bulk mail may be sent: a message with List-Id, Precedence: "
        "bulk|list or more than campaign_recipients recipients",
    )
    # Postfix refuses recipients past smtpd_recipient_limit (1000 by default), so a
    # higher threshold could never be reached.
    campaign_recipients: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="a message to more recipients than this is a campaign (1 to 1000)",
    )

    @model_validator(mode="after")
    def _ceiling(self) -> Self:
        if self.max_daily_quota is not None and self.max_daily_quota < self.daily_quota:
            raise ValueError("max_daily_quota must be at least daily_quota")
        return self

    @property
    def quota_ceiling(self) -> int:
        return self.max_daily_quota if self.max_daily_quota is not None else self.daily_quota


class PlansFile(Strict):
    plans: dict[Slug, Plan] = Field(min_length=1)


class ComplaintRate(Strict):
    complaints: PositiveInt = 1
    per_messages: PositiveInt = 3000


class AntiSpam(Strict):
    complaint_rate: ComplaintRate = ComplaintRate()
    min_volume: PositiveInt = Field(
        default=3000, description="messages sent before the complaint rate counts"
    )
    bounce_rate_max: Ratio = 0.05
    on_complaint: Literal["disable_pending_review", "notify_only"] = "disable_pending_review"
    on_breach: Literal["suspend", "notify_only"] = "suspend"
    window_days: int = Field(
        default=2,
        ge=1,
        le=2,
        description="UTC days the complaint and bounce rates are counted over; at most 2, "
        "the days the policy daemon keeps its accepted-recipient counters",
    )
    suppress_days: PositiveInt = Field(
        default=30, description="days a hard-bounced recipient stays suppressed for its customer"
    )


class WarmupStage(Strict):
    first_day: PositiveInt
    last_day: PositiveInt
    daily_cap: PositiveInt
    isp_caps: dict[Slug, PositiveInt] = Field(
        default_factory=dict, description="per throttling class daily caps during this stage"
    )

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.last_day < self.first_day:
            raise ValueError("last_day must not be before first_day")
        return self


class WarmupSchedule(Strict):
    stages: list[WarmupStage] = Field(min_length=1)

    @model_validator(mode="after")
    def _contiguous(self) -> Self:
        expected = 1
        for stage in self.stages:
            if stage.first_day != expected:
                raise ValueError(
                    f"stages must be contiguous from day 1: a stage starts on day "
                    f"{stage.first_day}, expected day {expected}"
                )
            expected = stage.last_day + 1
        weeks = (expected - 1) / 7
        if not 4 <= weeks <= 6:
            raise ValueError(f"a warm-up lasts 4 to 6 weeks; this one lasts {expected - 1} days")
        return self


class AdvanceCeilings(Strict):
    """When `relayops warmup advance` may move a dedicated IP to its next stage.

    Rates are per ISP class over the last `window_days` local days before today: each
    class's deferrals, bounces and complaints per attempted recipient stay under these.
    """

    window_days: PositiveInt = Field(default=3, le=14, description="days the rates cover")
    min_sent: PositiveInt = Field(
        default=20, description="recipients attempted in the window before any rate counts"
    )
    max_deferral_rate: Ratio = Field(default=0.10, description="deferred / attempted")
    max_bounce_rate: Ratio = Field(default=0.05, description="bounced / attempted")
    max_complaint_rate: Ratio = Field(default=0.001, description="complaints / attempted")


class WarmupFile(Strict):
    schedules: dict[Slug, WarmupSchedule] = Field(min_length=1)
    advance: AdvanceCeilings = AdvanceCeilings()


# With a rate delay, an output instance keeps the connection open across the pause (a new
# TCP + TLS handshake per message would add to every interval) only for pauses shorter
# than this: holding an idle connection longer is not what receivers expect
# (postconf(5), smtp_connection_cache_time_limit: "do not specify larger values without
# permission from the remote sites").
KEEP_CONNECTION_MAX_DELAY = 10
# postconf(5), default_destination_rate_delay: "specify a failed_cohort_limit of 10 or more"
# with a rate delay, or one connection error suspends the whole destination.
RATE_DELAY_MIN_FAILED_COHORTS = 10


# Automatic back-off (#12 step 3): Yahoo asks senders to wait "a while" after TSS04; 15
# minutes is three of Postfix's minimal_backoff_time, longer than a day holds mail too long.
PAUSE_DEFAULT_SECONDS = 900
PAUSE_MIN_SECONDS = 10
PAUSE_MAX_SECONDS = 86_400


class BackOff(Strict):
    """How Postfix slows down a destination that fails (postconf(5), "concurrency feedback")."""

    failed_cohorts: int | None = Field(
        default=None,
        ge=0,
        description="connection or handshake failures (in cohorts of the current concurrency) "
        "before Postfix suspends the destination; 0 never suspends. Default: 1, or 10 with a "
        "rate delay",
    )
    negative_feedback: Literal["1", "1/concurrency"] | None = Field(
        default=None,
        description="how far one failed delivery lowers the concurrency: to 1 at once ('1', "
        "Postfix's default) or by one step ('1/concurrency'); needs concurrency above 1",
    )
    pause_seconds: int = Field(
        default=PAUSE_DEFAULT_SECONDS,
        ge=PAUSE_MIN_SECONDS,
        le=PAUSE_MAX_SECONDS,
        description='how long a receiver\'s "slow down" deferral (Yahoo TSS04, Gmail 4.7.28, '
        "Microsoft 4.7.65x, a 4xx rate limit) pauses this class for the sending IP it "
        "answered (docs/warmup.md, back-off); mail waits in the relay's queue meanwhile",
    )


class IspClass(Strict):
    """One receiving ISP's sending speed, applied per sending IP and per destination domain.

    Only what Postfix enforces per transport: parallel connections, a pause between
    deliveries (which makes Postfix deliver one message at a time), messages per
    connection, recipients per message and how it backs off (docs/throttling.md). Each
    validator refuses a combination Postfix accepts and silently does not apply; fields
    are declared in the order the validators read them (pydantic's `info.data`).
    """

    domains: list[DomainName] = Field(min_length=1)
    rate_delay_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="pause between deliveries to one destination domain; non-zero means one "
        "delivery at a time (concurrency must then be 1)",
    )
    concurrency: PositiveInt = Field(description="parallel connections per destination domain")
    messages_per_connection: PositiveInt | None = Field(
        default=None,
        description="messages sent over one connection before it is closed (Postfix reuses a "
        "connection while mail waits); default: no limit",
    )
    recipients_per_message: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="recipients per delivery (Postfix's default: 50); 1 is refused because it "
        "makes Postfix apply concurrency and rate per recipient instead of per domain",
    )
    back_off: BackOff = BackOff()

    @field_validator("concurrency")
    @classmethod
    def _one_at_a_time_with_a_delay(cls, value: int, info: ValidationInfo) -> int:
        delay = info.data.get("rate_delay_seconds", 0)
        if delay and value > 1:
            raise ValueError(
                f"rate_delay_seconds {delay} makes Postfix deliver one message at a time per "
                f"destination, so concurrency {value} would never apply: set concurrency: 1, "
                "or rate_delay_seconds: 0 to use the concurrency"
            )
        return value

    @field_validator("messages_per_connection")
    @classmethod
    def _reuse_within_the_cache_time(cls, value: int | None, info: ValidationInfo) -> int | None:
        delay = info.data.get("rate_delay_seconds", 0)
        if value is not None and value > 1 and delay >= KEEP_CONNECTION_MAX_DELAY:
            raise ValueError(
                f"messages_per_connection {value} cannot apply with rate_delay_seconds {delay}: "
                "the connection is closed during a pause of "
                f"{KEEP_CONNECTION_MAX_DELAY} s or more, so each message opens its own; "
                f"leave it out or use a delay under {KEEP_CONNECTION_MAX_DELAY} s"
            )
        return value

    @field_validator("recipients_per_message")
    @classmethod
    def _per_domain(cls, value: int | None) -> int | None:
        if value == 1:
            raise ValueError(
                "recipients_per_message 1 makes Postfix apply the concurrency and rate delay "
                "per recipient instead of per domain: use 2 or more, or leave it out"
            )
        return value

    @field_validator("back_off")
    @classmethod
    def _back_off_that_applies(cls, value: BackOff, info: ValidationInfo) -> BackOff:
        delay = info.data.get("rate_delay_seconds", 0)
        cohorts = value.failed_cohorts
        if delay and cohorts is not None and 0 < cohorts < RATE_DELAY_MIN_FAILED_COHORTS:
            raise ValueError(
                f"failed_cohorts {cohorts} with a rate delay suspends the destination after "
                "a single connection error (one delivery at a time is a cohort): use "
                f"{RATE_DELAY_MIN_FAILED_COHORTS} or more, as postconf(5) advises"
            )
        if value.negative_feedback is not None and info.data.get("concurrency") == 1:
            raise ValueError(
                "negative_feedback lowers a concurrency above 1; with concurrency 1 Postfix "
                "has nothing to lower: leave it out"
            )
        return value

    @property
    def keeps_connection(self) -> bool:
        """Whether the connection stays open across the rate delay's pause."""
        return (
            0 < self.rate_delay_seconds < KEEP_CONNECTION_MAX_DELAY
            and self.messages_per_connection != 1
        )

    @property
    def failed_cohort_limit(self) -> int | None:
        """What the transport gets: the class's setting, else Postfix's advice for a delay."""
        if self.back_off.failed_cohorts is not None:
            return self.back_off.failed_cohorts
        return RATE_DELAY_MIN_FAILED_COHORTS if self.rate_delay_seconds else None


class ThrottlingFile(Strict):
    classes: dict[Slug, IspClass] = Field(default_factory=dict)


class Service(Strict):
    name: str = Field(min_length=1)
    domain: DomainName = Field(description="the service's own domain: bounces and feedback loops")
    postmaster: Email
    abuse: Email
    notify_from: Email
    feedback_address: Email = Field(
        description="where receivers send complaint reports (ARF, JMRP): an address of `domain`"
    )
    dkim: Dkim = Field(
        description="the service domain's own DKIM key: notices and bounces are signed with it"
    )

    @field_validator("feedback_address")
    @classmethod
    def _in_service_domain(cls, value: str, info: ValidationInfo) -> str:
        # Receivers send reports to the service domain's MX (the relays), which accept
        # only that domain on port 25: an address elsewhere would never reach them.
        domain = str(info.data.get("domain", ""))
        if domain and value.rpartition("@")[2].lower() != domain.lower():
            raise ValueError(
                f"{value!r} must be an address of the service domain {domain!r} "
                "(its MX are the relays, the only hosts that take reports)"
            )
        return value


class Notification(Strict):
    subject: str
    body: str
