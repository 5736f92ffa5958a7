"""Per (dedicated IP, ISP class): attempts, deferrals, bounces, complaints over local days.

Definitions (docs/warmup.md): a deferral rate is deferred attempts over all attempts (a
receiver that says "later" to every try shows 100 %); a bounce rate is bounced
recipients over final outcomes (sent + bounced); a complaint rate is complaints over
sent recipients. Pure: the records and the days are parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, tzinfo

from relayops.warmup.deliveries import Delivery


@dataclass
class Tally:
    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    complaints: int = 0

    @property
    def attempts(self) -> int:
        return self.sent + self.deferred + self.bounced

    @property
    def deferral_rate(self) -> float:
        return self.deferred / self.attempts if self.attempts else 0.0

    @property
    def bounce_rate(self) -> float:
        final = self.sent + self.bounced
        return self.bounced / final if final else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0

    def add(self, other: Tally) -> None:
        self.sent += other.sent
        self.deferred += other.deferred
        self.bounced += other.bounced
        self.complaints += other.complaints

    def as_dict(self) -> dict[str, float | int]:
        return {
            "attempts": self.attempts,
            "sent": self.sent,
            "deferred": self.deferred,
            "bounced": self.bounced,
            "complaints": self.complaints,
            "deferral_rate": round(self.deferral_rate, 4),
            "bounce_rate": round(self.bounce_rate, 4),
            "complaint_rate": round(self.complaint_rate, 4),
        }


@dataclass
class IpFigures:
    """One IP's tallies per ISP class over a set of local days."""

    by_class: dict[str, Tally] = field(default_factory=dict)

    @property
    def total(self) -> Tally:
        out = Tally()
        for tally in self.by_class.values():
            out.add(tally)
        return out


def figures(deliveries: Iterable[Delivery], *, ip: str, days: set[date], zone: tzinfo) -> IpFigures:
    """`ip`'s tallies on the local `days` (in `zone`, the customer's time zone)."""
    out = IpFigures()
    for d in deliveries:
        if d.ip != ip or d.at.astimezone(zone).date() not in days:
            continue
        tally = out.by_class.setdefault(d.isp_class, Tally())
        if d.status == "sent":
            tally.sent += 1
        elif d.status == "deferred":
            tally.deferred += 1
        else:
            tally.bounced += 1
    return out
