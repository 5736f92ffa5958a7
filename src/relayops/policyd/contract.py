"""policy.json, the contract between the compiler and the daemon (docs/policy-json.md).

Public pydantic models: `relayops render` builds a `PolicyFile` (compile/policy.py),
the daemon validates the file against the same models (rules.py), and
`relayops schemas` publishes `schemas/policy.schema.json` from them. Unknown fields
are ignored, so a newer compiler may add fields within one schema major version.
"""

from __future__ import annotations

import string
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_MAJOR = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Stage(_Model):
    """A warm-up stage in local dates, both inclusive."""

    first_day: date
    last_day: date
    daily_cap: Annotated[int, Field(ge=0)]
    isp_caps: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default={}, description="ISP class -> daily cap of recipients of that class's domains"
    )


class CustomerRules(_Model):
    """One subscription, resolved: its plan's values and its own overrides applied."""

    name: str
    status: Literal["active", "suspended", "terminated"]
    status_reason: str | None = None
    timezone: str = Field(description="IANA zone; the quota day runs midnight to midnight here")
    daily_quota: Annotated[int, Field(ge=0)]
    warn_ratio: Annotated[float, Field(gt=0, le=1)]
    max_message_bytes: Annotated[int, Field(gt=0)]
    contact: str
    logins: list[str]
    domains: list[str]
    warmup: list[Stage] = []
    # The milter's fields (docs/milter.md). The compiler always writes them; the
    # defaults only keep a file from before them readable.
    plan: str = ""
    from_subdomains: bool = False
    campaigns: Literal["allowed", "forbidden"] = "allowed"
    campaign_recipients: Annotated[int, Field(ge=1)] = 50

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Paris')") from exc
        return value


class Template(_Model):
    """A notice mail: string.Template subject and body."""

    subject: str
    body: str

    @field_validator("subject", "body")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        if not string.Template(value).is_valid():
            raise ValueError("invalid string.Template placeholder (write $$ for a dollar sign)")
        return value


class ServiceInfo(_Model):
    name: str
    domain: str
    notify_from: str
    # The local domain whose addresses (<customer>@mailbox_domain) are the customers'
    # IMAP mailboxes on the relay; absent in files of older compilers: no mailbox copy.
    # A DNS name only: it becomes part of an SMTP envelope address.
    mailbox_domain: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")] | None = None


class Notifications(_Model):
    """One template per notice kind (policyd/notices.py KINDS)."""

    warning: Template
    limit: Template
    # Added within schema 1: a file from an older compiler lacks them, and those
    # notices are then logged, not sent (see notices.py).
    resumed: Template | None = None
    complaint: Template | None = None
    disabled: Template | None = None
    reenabled: Template | None = None
    suspended: Template | None = None
    terminated: Template | None = None


class AntiSpam(_Model):
    """policies/antispam.yaml as the relay's feedback ingester applies it (defaults: the
    model's, for a policy.json written before the section existed)."""

    complaints: Annotated[int, Field(gt=0)] = 1
    per_messages: Annotated[int, Field(gt=0)] = 3000
    min_volume: Annotated[int, Field(gt=0)] = 3000
    bounce_rate_max: Annotated[float, Field(ge=0, le=1)] = 0.05
    on_complaint: Literal["disable_pending_review", "notify_only"] = "disable_pending_review"
    on_breach: Literal["suspend", "notify_only"] = "suspend"
    window_days: Annotated[int, Field(ge=1, le=2)] = 2
    suppress_days: Annotated[int, Field(gt=0)] = 30


class PolicyFile(_Model):
    """/etc/relayops/policy.json."""

    schema_version: int = SCHEMA_MAJOR
    service: ServiceInfo
    customers: dict[str, CustomerRules]
    notifications: Notifications
    antispam: AntiSpam = AntiSpam()
    recipient_classes: dict[str, str] = Field(
        default={},
        description="recipient domain (exact, lower-case ASCII) -> its ISP class, for the "
        "warm-up's per-class caps (policies/throttling.yaml)",
    )

    @field_validator("schema_version")
    @classmethod
    def _known_major(cls, value: int) -> int:
        if value != SCHEMA_MAJOR:
            raise ValueError(
                f"schema_version {value} is not supported (this daemon reads {SCHEMA_MAJOR})"
            )
        return value
