"""May a dedicated IP move to its next warm-up stage? Pure: figures and ceilings in.

Every ISP class the IP sent to in the window must be under each ceiling, and the IP
must have attempted at least `min_sent` recipients: a quiet week proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from relayops.model.policies import AdvanceCeilings
from relayops.warmup.rates import IpFigures


@dataclass(frozen=True)
class Decision:
    advance: bool
    reasons: tuple[str, ...]  # why it holds; empty when it advances


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def judge(
    found: IpFigures, ceilings: AdvanceCeilings, *, day: int, stage: int | None, stages: int
) -> Decision:
    reasons: list[str] = []
    if stage is None:
        reasons.append(
            f"day {day}: the warm-up "
            + ("has not started" if day < 1 else "is over (past the schedule's last stage)")
        )
    elif stage >= stages:
        reasons.append(f"stage {stage} is the schedule's last")
    total = found.total
    if total.attempts < ceilings.min_sent:
        reasons.append(
            f"{total.attempts} recipients attempted in the last {ceilings.window_days} day(s), "
            f"fewer than the {ceilings.min_sent} needed to judge"
        )
    for name in sorted(found.by_class):
        tally = found.by_class[name]
        checks = (
            ("deferral", tally.deferral_rate, ceilings.max_deferral_rate, tally.deferred),
            ("bounce", tally.bounce_rate, ceilings.max_bounce_rate, tally.bounced),
            ("complaint", tally.complaint_rate, ceilings.max_complaint_rate, tally.complaints),
        )
        for what, rate, ceiling, count in checks:
            if count and rate >= ceiling:
                reasons.append(
                    f"{name}: {what} rate {_pct(rate)} ({count} of {tally.attempts} "
                    f"attempts) is not under the ceiling of {_pct(ceiling)}"
                )
    return Decision(not reasons, tuple(reasons))
