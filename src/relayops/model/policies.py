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


class WarmupFile(Strict):
    schedules: dict[Slug, WarmupSchedule] = Field(min_length=1)


class IspClass(Strict):
    domains: list[DomainName] = Field(min_length=1)
    concurrency: PositiveInt = Field(description="parallel connections per destination")
    rate_delay_seconds: int = Field(
        default=0, ge=0, le=3600, description="pause between deliveries"
    )


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
