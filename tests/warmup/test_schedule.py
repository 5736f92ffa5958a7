"""Where an IP stands: calendar or held stage; what policy.json carries for it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from relayops.compile.policy import policy_rules
from relayops.loader import load_repo
from relayops.model.customer import WarmupRef
from relayops.model.policies import WarmupSchedule, WarmupStage
from relayops.warmup.schedule import HELD_UNTIL, position

SCHEDULE = WarmupSchedule(
    stages=[
        WarmupStage(first_day=1, last_day=3, daily_cap=200, isp_caps={"gmail": 50}),
        WarmupStage(first_day=4, last_day=14, daily_cap=500),
        WarmupStage(first_day=15, last_day=28, daily_cap=2000),
    ]
)
START = date(2026, 11, 10)


@pytest.mark.parametrize(
    ("today", "held", "expected"),
    [
        (date(2026, 11, 9), None, (0, None, False)),
        (date(2026, 11, 10), None, (1, 1, False)),
        (date(2026, 11, 12), None, (3, 1, False)),
        (date(2026, 11, 13), None, (4, 2, False)),
        (date(2026, 12, 7), None, (28, 3, False)),
        (date(2026, 12, 8), None, (29, None, False)),
        # held at stage 1 whatever the calendar says, until advanced
        (date(2026, 11, 20), 1, (11, 1, True)),
        (date(2027, 3, 1), 2, (112, 2, True)),
        (date(2026, 11, 9), 2, (0, None, True)),
    ],
)
def test_position(today: date, held: int | None, expected: tuple[object, ...]) -> None:
    found = position(SCHEDULE, WarmupRef(schedule="s", start=START, stage=held), today)
    assert (found.day, found.stage, found.held) == expected


def test_policy_json_of_a_held_ip_is_one_stage_from_the_start(example_repo: Path) -> None:
    root = example_repo
    path = root / "customers" / "globex.yaml"
    path.write_text(
        path.read_text().replace("start: 2026-11-10\n", "start: 2026-11-10\n  stage: 2\n")
    )
    repo = load_repo(root, today=date(2026, 12, 1)).repo
    assert repo is not None
    host = next(iter(repo.inventories["lab"].hosts))
    rules = policy_rules(repo, host).customers["globex"]
    assert [(s.first_day, s.last_day, s.daily_cap, s.isp_caps) for s in rules.warmup] == [
        (START, HELD_UNTIL, 500, {"gmail": 150, "microsoft": 150, "yahoo": 80})
    ]
    assert policy_rules(repo, host).recipient_classes["yahoo.com"] == "yahoo"


def test_a_stage_past_the_schedule_is_refused(example_repo: Path) -> None:
    root = example_repo
    path = root / "customers" / "globex.yaml"
    path.write_text(
        path.read_text().replace("start: 2026-11-10\n", "start: 2026-11-10\n  stage: 7\n")
    )
    findings = load_repo(root, today=date(2026, 12, 1)).findings
    assert [(f.file, f.field, f.message) for f in findings] == [
        ("customers/globex.yaml", "warmup.stage", "schedule standard-5w has 6 stages (1 to 6)")
    ]
