"""Where a dedicated IP stands in its warm-up schedule (pure: `today` is a parameter).

A customer's `warmup` either follows the calendar (day N of the schedule is in the
stage whose days cover N) or, once `relayops warmup advance` has written `stage: K`,
is held at stage K whatever the date, until the next advance: the gate on what the
receivers said (issue #12 step 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from relayops.model.customer import WarmupRef
from relayops.model.policies import WarmupSchedule, WarmupStage

# A held stage lasts until the next advance: its end date in policy.json.
HELD_UNTIL = date(9999, 12, 31)


@dataclass(frozen=True)
class Position:
    """The IP's place on `today`: day number (1 = start) and stage (1-based, None = none)."""

    day: int
    stage: int | None
    held: bool  # True: stage comes from `warmup.stage`, not from the calendar

    def caps(self, schedule: WarmupSchedule) -> WarmupStage | None:
        return None if self.stage is None else schedule.stages[self.stage - 1]


def calendar_stage(schedule: WarmupSchedule, day: int) -> int | None:
    """The stage whose days cover schedule day `day`, None before day 1 or after the end."""
    for index, stage in enumerate(schedule.stages, start=1):
        if stage.first_day <= day <= stage.last_day:
            return index
    return None


def position(schedule: WarmupSchedule, ref: WarmupRef, today: date) -> Position:
    day = (today - ref.start).days + 1
    if ref.stage is not None:
        return Position(day, ref.stage if day >= 1 else None, held=True)
    return Position(day, calendar_stage(schedule, day), held=False)


@dataclass(frozen=True)
class DatedStage:
    """A stage in local dates, both inclusive (what policy.json carries)."""

    first_day: date
    last_day: date
    stage: WarmupStage


def dated_stages(schedule: WarmupSchedule, ref: WarmupRef) -> list[DatedStage]:
    """The stages as dates: the calendar's, or the one held stage from the start onwards."""
    if ref.stage is not None:
        return [DatedStage(ref.start, HELD_UNTIL, schedule.stages[ref.stage - 1])]
    return [
        DatedStage(
            ref.start + timedelta(days=s.first_day - 1),
            ref.start + timedelta(days=s.last_day - 1),
            s,
        )
        for s in schedule.stages
    ]
