"""The whole policy repository, validated: what the compiler and the checks read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from relayops.model.customer import Customer
from relayops.model.inventory import Inventory
from relayops.model.policies import (
    AdvanceCeilings,
    AntiSpam,
    IspClass,
    Notification,
    Plan,
    Service,
    WarmupSchedule,
)
from relayops.model.released import ReleasedIp


@dataclass(frozen=True)
class Repo:
    root: Path
    customers: dict[str, Customer]
    plans: dict[str, Plan]
    antispam: AntiSpam
    warmup: dict[str, WarmupSchedule]
    throttling: dict[str, IspClass]
    service: Service
    notifications: dict[str, Notification]
    inventories: dict[str, Inventory] = field(default_factory=dict)
    released_ips: list[ReleasedIp] = field(default_factory=list)
    warmup_advance: AdvanceCeilings = field(default_factory=AdvanceCeilings)

    def effective_quota(self, customer: Customer) -> int:
        """The customer's daily quota: its override, else its plan's."""
        if customer.quota_override is not None:
            return customer.quota_override
        return self.plans[customer.plan].daily_quota
