"""Each dedicated IP's warm-up as of today: position, caps, sent, rates (pure assembly)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from relayops.model import Customer, Repo
from relayops.warmup.deliveries import Delivery
from relayops.warmup.gate import Decision, judge
from relayops.warmup.rates import IpFigures, figures
from relayops.warmup.schedule import Position, position


@dataclass(frozen=True)
class IpWarmup:
    ip: str
    customer: str
    schedule: str
    start: date
    today: date  # the customer's local date
    position: Position
    stages: int
    daily_cap: int | None  # None: no stage applies (the plan's quota only)
    isp_caps: dict[str, int]
    sent_today: IpFigures
    window: tuple[date, date]  # first and last local day of the rates' window
    rates: IpFigures
    decision: Decision

    def as_dict(self) -> dict[str, object]:
        return {
            "ip": self.ip,
            "customer": self.customer,
            "schedule": self.schedule,
            "start": self.start.isoformat(),
            "today": self.today.isoformat(),
            "day": self.position.day,
            "stage": self.position.stage,
            "stages": self.stages,
            "held": self.position.held,
            "daily_cap": self.daily_cap,
            "isp_caps": dict(sorted(self.isp_caps.items())),
            "sent_today": {k: v.sent for k, v in sorted(self.sent_today.by_class.items())},
            "window": [self.window[0].isoformat(), self.window[1].isoformat()],
            "rates": {k: v.as_dict() for k, v in sorted(self.rates.by_class.items())},
            "can_advance": self.decision.advance,
            "holds_because": list(self.decision.reasons),
        }


def warming_customers(repo: Repo) -> list[Customer]:
    """Customers on a dedicated IP with a warm-up, by IP name."""
    found = [
        c for c in repo.customers.values() if c.placement.dedicated_ip and c.warmup is not None
    ]
    return sorted(found, key=lambda c: c.placement.dedicated_ip or "")


def ip_warmup(
    repo: Repo, customer: Customer, deliveries: Sequence[Delivery], now: datetime
) -> IpWarmup:
    ref = customer.warmup
    ip = customer.placement.dedicated_ip
    assert ref is not None and ip is not None
    zone = ZoneInfo(customer.timezone)
    today = now.astimezone(zone).date()
    schedule = repo.warmup[ref.schedule]
    where = position(schedule, ref, today)
    stage = where.caps(schedule)
    ceilings = repo.warmup_advance
    first = today - timedelta(days=ceilings.window_days - 1)
    window = {first + timedelta(days=i) for i in range(ceilings.window_days)}
    rates = figures(deliveries, ip=ip, days=window, zone=zone)
    return IpWarmup(
        ip=ip,
        customer=customer.id,
        schedule=ref.schedule,
        start=ref.start,
        today=today,
        position=where,
        stages=len(schedule.stages),
        daily_cap=None if stage is None else stage.daily_cap,
        isp_caps={} if stage is None else dict(stage.isp_caps),
        sent_today=figures(deliveries, ip=ip, days={today}, zone=zone),
        window=(first, today),
        rates=rates,
        decision=judge(
            rates, ceilings, day=where.day, stage=where.stage, stages=len(schedule.stages)
        ),
    )
