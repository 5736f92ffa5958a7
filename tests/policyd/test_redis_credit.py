"""Quota credit (policyd/credit.py) against a real redis-server: fewer round trips, the
quota still exact, unused credit given back on stop and waited for at the limit."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policyd.test_redis import DEFER, count_key, start
from relayops.policyd.rules import Charge, ChargeStatus, Outcome, assess, load_rules
from relayops.policyd.store_redis import RedisStore
from support.policyd import Daemon, RedisServer, request, rules_data, write_rules
from support.processes import free_port

pytestmark = pytest.mark.real


def evalsha_calls(redis_server: RedisServer) -> int:
    stats = redis_server.client().info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def quota_reply(quota: int) -> str:
    resume = "sending resumes at 00:00 Europe/Paris"
    return f"452 4.7.1 daily quota of {quota} reached for acme; {resume}"


def test_credit_saves_round_trips_and_is_given_back_on_stop(
    tmp_path: Path, daemons: list[Daemon], redis_server: RedisServer
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 10_000}))
    metrics = free_port()
    d = start(daemons, tmp_path, rules, redis_server.url, "--metrics", f"127.0.0.1:{metrics}")
    client = d.client()
    before = evalsha_calls(redis_server)
    assert [client.ask(request()) for _ in range(400)] == ["DUNNO"] * 400
    calls = evalsha_calls(redis_server) - before
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as page:
        scraped = page.read().decode()
    answered = re.search(
        r'^relayops_policyd_credit_total\{event="answered"\} (\S+)$', scraped, re.M
    )
    assert answered is not None, scraped
    # Every recipient not charged in a call was answered from credit (a call may carry
    # settlements only, when the daemon idles between two requests).
    assert 400 - calls <= float(answered.group(1)) < 400
    # Runs of 16: one call grants 16 recipients and settles the run before it (ideal:
    # 400 / 16 = 25 calls); a loaded machine's lapsed windows only add calls: allow 4x.
    assert calls <= 100, calls
    r = redis_server.client()
    assert int(r.get(count_key())) >= 400  # ahead by the unused part of the live run
    client.close()
    assert d.stop(signal.SIGTERM) == 0
    assert int(r.get(count_key())) == 400
    assert int(r.get(count_key().replace(":count:", ":credit:")) or 0) == 0


def test_a_day_at_its_limit_waits_for_credit_another_daemon_holds(
    tmp_path: Path, daemons: list[Daemon], redis_server: RedisServer
) -> None:
    quota = 100  # warning at 80: runs end at a count of 79 at most, then of 99
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": quota}))
    # A 3 s window: the other daemon reaches the limit well inside it, however loaded
    # the machine, so its charges at the limit do have to wait.
    url = redis_server.url + "?credit_window=3000"
    holder = start(daemons, tmp_path, rules, url)
    other = start(daemons, tmp_path, rules, url)
    idle = holder.client()
    assert idle.ask(request()) == "DUNNO"  # takes a run: 15 recipients it will not use
    r = redis_server.client()
    assert int(r.get(count_key())) == 16
    busy = other.client()
    answers: Counter[str] = Counter()
    slowest = 0.0
    for _ in range(120):
        t0 = time.monotonic()
        answers[busy.ask(request())] += 1
        slowest = max(slowest, time.monotonic() - t0)
    # The holder's run lapses after 3 s and is given back; the other daemon's charges
    # at the limit waited for it instead of refusing early: the quota is exact.
    assert answers == {"DUNNO": quota - 1, quota_reply(quota): 120 - (quota - 1)}
    assert 0.3 < slowest < 5.0, slowest
    assert int(r.get(count_key())) == quota
    idle.close()
    busy.close()


def test_credit_taken_before_an_outage_is_still_answered_from(
    tmp_path: Path, daemons: list[Daemon], redis_server: RedisServer
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 1000}))
    url = redis_server.url + "?credit_window=5000"  # the run outlives stopping Redis
    d = start(daemons, tmp_path, rules, url, "--on-store-error", "defer")
    client = d.client()
    assert client.ask(request()) == "DUNNO"  # a run of 16, counted in Redis
    redis_server.stop()
    during = Counter(client.ask(request()) for _ in range(30))
    # The 15 recipients of the run were counted before the outage: answering them is
    # exact; everything past them is the store-error answer, never fail-open.
    assert during == {"DUNNO": 15, DEFER: 15}, during
    redis_server.start()
    deadline = time.monotonic() + 5
    while client.ask(request()) != "DUNNO":
        assert time.monotonic() < deadline, "no recovery after Redis came back"
        time.sleep(0.05)
    client.close()
    assert d.stop(signal.SIGTERM) == 0
    assert int(redis_server.client().get(count_key())) == 1 + 15 + 1


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_run_due_for_settlement_does_not_spin_through_an_outage(
    tmp_path: Path, daemons: list[Daemon], redis_server: RedisServer
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 1000}))
    d = start(daemons, tmp_path, rules, redis_server.url + "?credit_window=100")
    client = d.client()
    assert client.ask(request()) == "DUNNO"
    redis_server.stop()
    time.sleep(0.5)  # the run has lapsed: its settlement is due, and Redis is gone
    assert d.proc is not None
    before = cpu_seconds(d.proc.pid)
    time.sleep(3)
    # Reconnect attempts back off (at most one a second), not one per loop pass.
    assert cpu_seconds(d.proc.pid) - before < 0.5
    client.close()


def test_runs_granted_by_a_call_whose_wait_fell_short_go_back_at_once(
    tmp_path: Path, daemons: list[Daemon], redis_server: RedisServer
) -> None:
    """No replica: every call tempfails after WAIT; its recipient stays counted (the safe
    side), the run the script granted with it is given back at once, not stranded."""
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": 1000}))
    d = start(daemons, tmp_path, rules, redis_server.url + "?wait=1&wait_timeout=10")
    client = d.client()
    answers = Counter()
    for _ in range(5):
        answers[client.ask(request())] += 1
        time.sleep(1.2)  # past the outage back-off: each request reaches Redis
    client.close()
    assert answers == {DEFER: 5}
    assert d.stop(signal.SIGTERM) == 0
    r = redis_server.client()
    assert int(r.get(count_key())) == 5
    assert int(r.get(count_key().replace(":count:", ":credit:")) or 0) == 0


def test_the_limit_notice_waits_for_what_was_accepted_not_for_credit_held(
    tmp_path: Path, daemons: list[Daemon], redis_server: RedisServer
) -> None:
    quota = 100
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": quota}))
    url = redis_server.url + "?credit_window=3000"
    holder, busy = start(daemons, tmp_path, rules, url), start(daemons, tmp_path, rules, url)
    held = holder.client()
    assert held.ask(request()) == "DUNNO"  # holds 15 it does not use (yet)
    client = busy.client()
    assert [client.ask(request()) for _ in range(84)] == ["DUNNO"] * 84
    r = redis_server.client()
    day = count_key().rsplit(":", 1)[1]
    # The count is at 100, but only 85 were accepted: no "quota reached" yet.
    assert int(r.get(count_key())) == quota
    assert not r.exists(f"relayops:notice:acme:{day}:limit")
    assert r.exists(f"relayops:notice:acme:{day}:warning")  # 85 >= 80 accepted
    later = Counter(client.ask(request()) for _ in range(20))
    assert later == {"DUNNO": 15, quota_reply(quota): 5}
    assert r.exists(f"relayops:notice:acme:{day}:limit")
    held.close()
    client.close()


def test_a_graceful_close_settles_what_the_call_in_flight_granted(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    rules = load_rules(write_rules(tmp_path / "policy.json", rules_data()))

    async def charge_then_close() -> Outcome:
        store = RedisStore(redis_server.url)
        await store.start()
        charge = assess(request(), rules, datetime.now(UTC))
        assert isinstance(charge, Charge)
        pending = store.charge(charge)
        assert isinstance(pending, asyncio.Future)
        await asyncio.sleep(0)  # the EVALSHA goes out
        await store.close()
        return await pending

    outcome = asyncio.run(charge_then_close())
    assert outcome.status is ChargeStatus.ACCEPTED
    r = redis_server.client()
    assert int(r.get(count_key())) == 1
    assert int(r.get(count_key().replace(":count:", ":credit:")) or 0) == 0
