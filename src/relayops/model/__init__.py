"""The data model of the policy repository (pydantic v2, unknown fields forbidden)."""

from relayops.model.customer import Customer, Dkim, Domain, Placement, Status, User, WarmupRef
from relayops.model.inventory import Inventory, RelayHost, RelayIp
from relayops.model.policies import (
    AntiSpam,
    IspClass,
    Notification,
    Plan,
    Service,
    WarmupSchedule,
    WarmupStage,
)
from relayops.model.repo import Repo

__all__ = [
    "AntiSpam",
    "Customer",
    "Dkim",
    "Domain",
    "Inventory",
    "IspClass",
    "Notification",
    "Placement",
    "Plan",
    "RelayHost",
    "RelayIp",
    "Repo",
    "Service",
    "Status",
    "User",
    "WarmupRef",
    "WarmupSchedule",
    "WarmupStage",
]
