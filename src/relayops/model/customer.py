"""A subscription: `customers/<id>.yaml`. The file name is the customer id."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from relayops.model.fields import (
    DomainName,
    Email,
    Login,
    PasswordHash,
    PositiveInt,
    Selector,
    Slug,
    Strict,
    TimeZone,
)


class Status(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class NextSelector(Strict):
    """Step 1 of a rotation: the new key is published in DNS; the current one still signs."""

    selector: Selector = Field(description="the new selector, published but not yet signing")


class PreviousSelector(Strict):
    """Step 2 of a rotation: the old key no longer signs but stays published.

    Messages signed with it before the switch may still be in transit or queued at a
    receiver, so its record stays in DNS until `retire_after` (then step 3 removes it).
    """

    selector: Selector = Field(description="the selector that signed before the switch")
    retire_after: date = Field(description="the old record stays published until this date")


class Dkim(Strict):
    """The domain's DKIM keys: the signing selector and at most one rotation in progress.

    A rotation is `relayops dkim rotate` three times, each a deploy:
    [selector] -> [selector, next] -> [next as selector, previous] -> [selector].
    """

    selector: Selector = Field(
        description="DKIM selector: the key is published at <selector>._domainkey.<domain>"
    )
    next: NextSelector | None = Field(
        default=None, description="rotation step 1: a new selector published before it signs"
    )
    previous: PreviousSelector | None = Field(
        default=None, description="rotation step 2: the old selector, published until retired"
    )

    @model_validator(mode="after")
    def _one_rotation(self) -> Self:
        if self.next is not None and self.previous is not None:
            raise ValueError(
                "one rotation at a time: retire 'previous' before publishing a 'next' selector"
            )
        others = [s.selector for s in (self.next, self.previous) if s is not None]
        if self.selector in others:
            raise ValueError(f"selector {self.selector!r} is listed twice")
        return self

    @property
    def published(self) -> tuple[str, ...]:
        """Every selector whose key must be in DNS: the signing one first."""
        extra = [s.selector for s in (self.next, self.previous) if s is not None]
        return (self.selector, *extra)


class Domain(Strict):
    name: DomainName = Field(
        description="A sender domain the customer owns (any local part may send)"
    )
    dkim: Dkim


class User(Strict):
    login: Login = Field(description="SMTP AUTH login; unique across all customers")
    password: PasswordHash = Field(
        description="Dovecot password hash: {ARGON2ID}, {ARGON2I}, {SHA512-CRYPT} or {BLF-CRYPT}"
    )


class Placement(Strict):
    """Where the customer's mail leaves from: a shared pool or one dedicated IP."""

    pool: Slug | None = Field(default=None, description="name of a shared IP pool in the inventory")
    dedicated_ip: Slug | None = Field(
        default=None, description="name of a dedicated IP in the inventory"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.pool is None) == (self.dedicated_ip is None):
            raise ValueError("give exactly one of 'pool' or 'dedicated_ip'")
        return self


class WarmupRef(Strict):
    schedule: Slug = Field(description="name of a schedule in policies/warmup.yaml")
    start: date = Field(description="first day of the warm-up (day 1 of the schedule)")
    stage: PositiveInt | None = Field(
        default=None,
        description="the stage (1 = the schedule's first) the IP is held at until "
        "`relayops warmup advance` moves it on; without it stages follow the calendar",
    )


class Customer(Strict):
    """One subscription. Its daily quota is shared by all its logins."""

    id: Slug = Field(
        description="the customer id: the file name without .yaml (not written in the file)"
    )
    name: str = Field(min_length=1, max_length=200)
    contact: Email = Field(description="receives quota warnings and notices")
    status: Status = Status.ACTIVE
    status_reason: str | None = Field(
        default=None, min_length=3, description="required when suspended or terminated"
    )
    status_date: date | None = Field(
        default=None, description="required when suspended or terminated"
    )
    plan: Slug
    timezone: TimeZone = Field(default="UTC", description="IANA zone: the quota day's boundary")
    quota_override: PositiveInt | None = Field(
        default=None,
        description="daily quota replacing the plan's, up to the plan's max_daily_quota",
    )
    placement: Placement
    # Empty while a customer is being onboarded (`relayops customer new`): without a
    # domain or a login it cannot send anything.
    domains: list[Domain] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    warmup: WarmupRef | None = Field(default=None, description="required with a dedicated IP")

    @model_validator(mode="after")
    def _status_details(self) -> Self:
        if self.status is not Status.ACTIVE and (
            self.status_reason is None or self.status_date is None
        ):
            raise ValueError(
                f"a {self.status.value} customer needs 'status_reason' and 'status_date'"
            )
        if self.status is Status.ACTIVE and (self.status_reason or self.status_date):
            raise ValueError("an active customer has no 'status_reason' or 'status_date'")
        if self.placement.dedicated_ip is not None and self.warmup is None:
            raise ValueError("a customer on a dedicated IP needs 'warmup' (schedule and start)")
        return self

    @property
    def sends(self) -> bool:
        return self.status is Status.ACTIVE
