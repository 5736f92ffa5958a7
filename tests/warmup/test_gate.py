"""Rates per class and the advance gate, both sides of each ceiling (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from relayops.model.policies import AdvanceCeilings
from relayops.warmup.deliveries import Delivery, Status
from relayops.warmup.gate import judge
from relayops.warmup.rates import Tally, figures

CEILINGS = AdvanceCeilings(window_days=3, min_sent=20, max_deferral_rate=0.1, max_bounce_rate=0.05)
DAY = date(2026, 12, 1)


def records(ip: str, isp: str, **counts: int) -> list[Delivery]:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    out = []
    for status, n in counts.items():
        s: Status = status  # type: ignore[assignment]
        out += [Delivery(at, ip, isp, f"{isp}.lab", s, "2.0.0", "") for _ in range(n)]
    return out


def test_rates_are_per_attempt_final_outcome_and_sent() -> None:
    t = Tally(sent=90, deferred=10, bounced=10, complaints=9)
    assert (t.attempts, t.deferral_rate, t.bounce_rate, t.complaint_rate) == (
        110,
        10 / 110,
        0.1,
        0.1,
    )
    assert Tally().as_dict()["deferral_rate"] == 0.0


def test_figures_keep_the_ip_and_the_days_of_the_customers_zone() -> None:
    found = records("d1", "gmail", sent=3) + records("d2", "gmail", sent=5)
    late = Delivery(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "d1", "gmail", "g", "sent", "", "")
    paris, utc = ZoneInfo("Europe/Paris"), ZoneInfo("UTC")
    assert figures([*found, late], ip="d1", days={DAY}, zone=paris).by_class["gmail"].sent == 4
    assert figures([*found, late], ip="d1", days={DAY}, zone=utc).by_class["gmail"].sent == 3


@pytest.mark.parametrize(
    ("counts", "reasons"),
    [
        ({"sent": 20}, []),
        (
            {"sent": 19},
            ["19 recipients attempted in the last 3 day(s), fewer than the 20 needed to judge"],
        ),
        # deferral: 2 of 21 = 9.5 % passes, 3 of 21 = 14.3 % holds; 10 % exactly holds
        ({"sent": 19, "deferred": 2}, []),
        (
            {"sent": 18, "deferred": 3},
            ["yahoo: deferral rate 14.3 % (3 of 21 attempts) is not under the ceiling of 10.0 %"],
        ),
        (
            {"sent": 27, "deferred": 3},
            ["yahoo: deferral rate 10.0 % (3 of 30 attempts) is not under the ceiling of 10.0 %"],
        ),
        # bounce: 1 of 21 = 4.8 % passes, 1 of 20 = 5.0 % holds
        ({"sent": 20, "bounced": 1}, []),
        (
            {"sent": 19, "bounced": 1},
            ["yahoo: bounce rate 5.0 % (1 of 20 attempts) is not under the ceiling of 5.0 %"],
        ),
    ],
)
def test_the_gate_on_each_side_of_each_ceiling(counts: dict[str, int], reasons: list[str]) -> None:
    found = figures(records("d1", "yahoo", **counts), ip="d1", days={DAY}, zone=ZoneInfo("UTC"))
    decision = judge(found, CEILINGS, day=5, stage=2, stages=6)
    assert list(decision.reasons) == reasons
    assert decision.advance is (not reasons)


def test_one_bad_class_holds_the_ip_and_the_schedule_end_holds() -> None:
    found = figures(
        records("d1", "gmail", sent=60) + records("d1", "yahoo", sent=10, bounced=50),
        ip="d1",
        days={DAY},
        zone=ZoneInfo("UTC"),
    )
    assert judge(found, CEILINGS, day=5, stage=2, stages=6).reasons == (
        "yahoo: bounce rate 83.3 % (50 of 60 attempts) is not under the ceiling of 5.0 %",
    )
    clean = figures(records("d1", "gmail", sent=60), ip="d1", days={DAY}, zone=ZoneInfo("UTC"))
    assert judge(clean, CEILINGS, day=40, stage=6, stages=6).reasons == (
        "stage 6 is the schedule's last",
    )
    assert judge(clean, CEILINGS, day=0, stage=None, stages=6).reasons == (
        "day 0: the warm-up has not started",
    )
    assert judge(clean, CEILINGS, day=50, stage=None, stages=6).reasons == (
        "day 50: the warm-up is over (past the schedule's last stage)",
    )
