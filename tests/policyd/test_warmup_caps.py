"""Warm-up caps per ISP class: the decision with injected clock and memory, then the real
daemon on SQLite and Redis (tests marked real)."""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from relayops.policyd.rules import Refusal, assess, decide, parse_rules
from relayops.policyd.store import MemoryCounters
from support.policyd import Daemon, RedisServer, request, rules_data, write_rules

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 10:00 in Paris
TODAY = date(2026, 12, 1)
CLASSES = {"gmail.lab": "gmail", "googlemail.lab": "gmail", "yahoo.lab": "yahoo"}


def capped(
    *,
    daily_cap: int = 100,
    isp_caps: dict[str, int] | None = None,
    quota: int = 5000,
    today: date = TODAY,
) -> dict[str, Any]:
    data = rules_data(
        acme={
            "daily_quota": quota,
            "warmup": [
                {
                    "first_day": (today - timedelta(days=2)).isoformat(),
                    "last_day": (today + timedelta(days=1)).isoformat(),
                    "daily_cap": daily_cap,
                    "isp_caps": {"gmail": 3, "yahoo": 0} if isp_caps is None else isp_caps,
                },
                {
                    "first_day": (today + timedelta(days=2)).isoformat(),
                    "last_day": (today + timedelta(days=9)).isoformat(),
                    "daily_cap": 1000,
                },
            ],
        }
    )
    data["recipient_classes"] = CLASSES
    return data


GMAIL_FULL = (
    "452 4.7.1 warm-up limit of 3 recipients at ISP class gmail reached today for acme; "
    "sending to it resumes at 00:00 Europe/Paris"
)


def test_assess_carries_the_class_only_where_the_day_caps_it() -> None:
    rules = parse_rules(capped())
    charge = assess(request(recipient="a@GMAIL.lab"), rules, NOW)
    assert not isinstance(charge, type(None))
    assert (charge.isp_class, charge.class_limit, charge.limit) == ("gmail", 3, 100)  # type: ignore[union-attr]
    other = assess(request(recipient="a@example.org"), rules, NOW)
    assert (other.isp_class, other.limit) == (None, 100)  # type: ignore[union-attr]
    # A stage without isp_caps: no class, the stage's daily cap.
    later = assess(request(recipient="a@gmail.lab"), rules, NOW + timedelta(days=3))
    assert (later.isp_class, later.limit) == (None, 1000)  # type: ignore[union-attr]
    # After the warm-up: the quota, no class.
    after = assess(request(recipient="a@gmail.lab"), rules, NOW + timedelta(days=30))
    assert (after.isp_class, after.limit) == (None, 5000)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("recipients", "expected"),
    [
        # the class cap: 3 accepted, the 4th refused naming the class and the resume time
        (["gmail.lab"] * 4, ["DUNNO", "DUNNO", "DUNNO", GMAIL_FULL]),
        # both domains of the class share its cap
        (["gmail.lab", "googlemail.lab", "gmail.lab", "googlemail.lab"], [0, 0, 0, 1]),
        # a cap of 0: the class is closed for the day
        (["yahoo.lab"], [1]),
        # other domains are not held back by a full class
        (["gmail.lab"] * 3 + ["gmail.lab", "example.org"], [0, 0, 0, 1, 0]),
    ],
)
def test_class_caps_in_memory(recipients: list[str], expected: list[object]) -> None:
    rules, counters = parse_rules(capped()), MemoryCounters()
    actions = [
        decide(request(recipient=f"x{i}@{d}"), rules, counters, NOW).action
        for i, d in enumerate(recipients)
    ]
    if all(isinstance(e, int) for e in expected):
        refused = [int(a != "DUNNO") for a in actions]
        assert refused == expected
    else:
        assert actions == expected
    if "yahoo.lab" in recipients:
        assert actions == [
            "452 4.7.1 warm-up limit of 0 recipients at ISP class yahoo reached today for "
            "acme; sending to it resumes at 00:00 Europe/Paris"
        ]


def test_a_class_refusal_is_not_counted_and_the_day_limit_comes_first() -> None:
    rules, counters = parse_rules(capped(daily_cap=4)), MemoryCounters()
    day = NOW.astimezone(ZoneInfo("Europe/Paris")).date()
    for i in range(4):
        decide(request(recipient=f"g{i}@gmail.lab"), rules, counters, NOW)
    assert counters.counts[("acme", day)] == 3
    assert counters.class_counts[("acme", day, "gmail")] == 3
    assert decide(request(recipient="o@example.org"), rules, counters, NOW).action == "DUNNO"
    verdict = decide(request(recipient="g@gmail.lab"), rules, counters, NOW)
    # The day's limit (4) is reached: the quota refusal, not the class's.
    assert verdict.action == (
        "452 4.7.1 daily warm-up limit of 4 reached for acme; sending resumes at 00:00 Europe/Paris"
    )
    assert verdict.refusal is Refusal.QUOTA


def test_the_class_count_starts_again_the_next_local_day() -> None:
    rules, counters = parse_rules(capped()), MemoryCounters()
    for i in range(3):
        decide(request(recipient=f"g{i}@gmail.lab"), rules, counters, NOW)
    assert decide(request(recipient="g@gmail.lab"), rules, counters, NOW).action == GMAIL_FULL
    # 23:00 UTC on Dec 1 is 00:00 on Dec 2 in Paris.
    midnight = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    before = midnight - timedelta(seconds=1)
    assert decide(request(recipient="g@gmail.lab"), rules, counters, before).action == GMAIL_FULL
    assert decide(request(recipient="g@gmail.lab"), rules, counters, midnight).action == "DUNNO"


# ---- real daemons ------------------------------------------------------------------------


def _today_rules(tmp: Path) -> Path:
    """Caps that apply today in Paris, whatever the real date."""
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date()
    return write_rules(tmp / "policy.json", capped(today=today))


def _exercise(daemon: Daemon) -> list[str]:
    client = daemon.client()
    try:
        return [
            client.ask(request(recipient=f"r{i}@{d}"))
            for i, d in enumerate(["gmail.lab"] * 4 + ["example.org", "yahoo.lab"])
        ]
    finally:
        client.close()


EXPECTED_ANSWERS = [
    "DUNNO",
    "DUNNO",
    "DUNNO",
    GMAIL_FULL,
    "DUNNO",
    "452 4.7.1 warm-up limit of 0 recipients at ISP class yahoo reached today for acme; "
    "sending to it resumes at 00:00 Europe/Paris",
]


@pytest.mark.real
def test_sqlite_daemon_counts_per_class_and_keeps_it_across_a_restart(tmp_path: Path) -> None:
    rules = _today_rules(tmp_path)
    store = tmp_path / "counters.sqlite"
    daemon = Daemon(tmp_path, rules, f"sqlite:{store}").start()
    try:
        assert _exercise(daemon) == EXPECTED_ANSWERS
    finally:
        assert daemon.stop() == 0
    day = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date().isoformat()
    conn = sqlite3.connect(store)
    rows = conn.execute("SELECT customer, day, isp_class, count FROM class_counters").fetchall()
    conn.close()
    assert rows == [("acme", day, "gmail", 3)]
    again = Daemon(tmp_path, rules, f"sqlite:{store}", name="again").start()
    try:
        client = again.client()
        assert client.ask(request(recipient="z@gmail.lab")) == GMAIL_FULL
        client.close()
    finally:
        again.stop()


@pytest.mark.real
def test_redis_daemon_counts_per_class(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        rules = _today_rules(tmp_path)
        daemon = Daemon(tmp_path, rules, server.url).start()
        try:
            assert _exercise(daemon) == EXPECTED_ANSWERS
        finally:
            daemon.stop()
        day = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date().isoformat()
        client = server.client()
        assert int(client.get(f"relayops:count:acme:{day}:gmail")) == 3
        assert int(client.get(f"relayops:count:acme:{day}")) == 4
        assert 0 < client.ttl(f"relayops:count:acme:{day}:gmail") <= 2 * 86400
    finally:
        server.stop()


@pytest.mark.real
def test_three_daemons_share_one_class_cap_exactly(
    tmp_path: Path, daemons: list[Daemon], redis_server: RedisServer
) -> None:
    """The class count rides in the batched Lua call: 12 connections over 3 daemons never
    take a class past its cap, and the day's count holds every accepted recipient."""
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date()
    rules = write_rules(
        tmp_path / "policy.json", capped(daily_cap=1000, isp_caps={"gmail": 50}, today=today)
    )
    trio = [Daemon(tmp_path, rules, redis_server.url, name=f"d{i}").start() for i in range(3)]
    daemons.extend(trio)
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def hammer(daemon: Daemon) -> None:
        client = daemon.client()
        domains = ("gmail.lab", "example.org")
        local = Counter(client.ask(request(recipient=f"r{i}@{domains[i % 2]}")) for i in range(60))
        client.close()
        with lock:
            answers.update(local)

    threads = [threading.Thread(target=hammer, args=(d,)) for d in trio for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    full = GMAIL_FULL.replace("limit of 3 ", "limit of 50 ")
    assert answers == {"DUNNO": 360 + 50, full: 360 - 50}
    client = redis_server.client()
    day = today.isoformat()
    assert int(client.get(f"relayops:count:acme:{day}:gmail")) == 50
    # Recipients of uncapped classes may be granted in runs (policyd/credit.py): the
    # day's count is exact once the daemons have given back what they did not use.
    for d in trio:
        assert d.stop(signal.SIGTERM) == 0
    assert int(client.get(f"relayops:count:acme:{day}")) == 410
