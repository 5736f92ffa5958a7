"""The decision function with an injected clock and in-memory counters (no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from relayops.policyd.rules import (
    Charge,
    ChargeStatus,
    Outcome,
    Refusal,
    Rules,
    RulesError,
    Verdict,
    assess,
    conclude,
    day_start,
    decide,
    load_rules,
    parse_rules,
    warn_threshold,
)
from relayops.policyd.store import MemoryCounters
from support.policyd import request, rules_data


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def rules_with(**changes: dict[str, Any]) -> Rules:
    return parse_rules(rules_data(**changes))


def send(
    rules: Rules, counters: MemoryCounters, now: datetime, n: int = 1, **kw: Any
) -> list[Verdict]:
    return [decide(request(**kw), rules, counters, now) for _ in range(n)]


def accepted(verdicts: list[Verdict]) -> int:
    return sum(v.action == "DUNNO" for v in verdicts)


# ---- loading -------------------------------------------------------------------------------


def test_load_rules_builds_the_login_index(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(rules_data()))
    rules = load_rules(path)
    assert rules.by_login["acme-app"] is rules.by_login["acme-crm"] is rules.customers["acme"]
    assert rules.customers["acme"].tz == ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 2}, "schema_version 2 is not supported"),
        ({"customers": {"x": {"timezone": "Mars/Olympus"}}}, "customers.x.timezone"),
        ({"notifications": {"warning": {"subject": "$", "body": ""}}}, "notifications.warning"),
    ],
)
def test_invalid_rules_say_where_and_why(change: dict[str, Any], message: str) -> None:
    data = rules_data()
    for key, value in change.items():
        if key == "customers":
            data["customers"]["x"] = {**data["customers"]["acme"], "logins": ["x"], **value["x"]}
        elif key == "notifications":
            data["notifications"].update(value)
        else:
            data[key] = value
    with pytest.raises(RulesError, match=message.replace("$", r"\$")):
        parse_rules(data)


def test_a_login_in_two_customers_is_refused() -> None:
    data = rules_data(other={"logins": ["acme-app"], "domains": ["other.example"]})
    with pytest.raises(RulesError, match="'acme-app' also belongs to 'acme'"):
        parse_rules(data)


def test_unreadable_and_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RulesError, match="not valid JSON"):
        load_rules(bad)


# ---- quota and the local day ----------------------------------------------------------------


def test_quota_is_shared_by_all_logins_and_names_limit_and_resume_time() -> None:
    rules, counters = rules_with(acme={"daily_quota": 3}), MemoryCounters()
    now = utc(2026, 11, 23, 10, 0)
    verdicts = send(rules, counters, now, 2, login="acme-app")
    verdicts += send(rules, counters, now, 2, login="ACME-crm")
    assert [v.action for v in verdicts[:3]] == ["DUNNO"] * 3
    refused = verdicts[3]
    assert refused.action == (
        "452 4.7.1 daily quota of 3 reached for acme; sending resumes at 00:00 Europe/Paris"
    )
    assert refused.refusal is Refusal.QUOTA and (refused.count, refused.limit) == (3, 3)


def test_midnight_rollover_in_europe_paris() -> None:
    rules, counters = rules_with(acme={"daily_quota": 2}), MemoryCounters()
    before = utc(2026, 11, 23, 22, 59, 59)  # 23:59:59 CET
    assert accepted(send(rules, counters, before, 3)) == 2
    assert accepted(send(rules, counters, utc(2026, 11, 23, 23, 0, 0), 3)) == 2  # 00:00 CET


def test_a_timestamp_just_before_midnight_is_on_the_same_day_cached_or_not() -> None:
    """The daemon passes time.time(): a float a few tenths of a µs before a local
    midnight must fall on one day whether the customer's day is cached or not."""
    midnight = utc(2026, 11, 23, 23, 0, 0).timestamp()  # 00:00 CET
    for ts in (midnight - 2e-7, midnight - 1e-6, midnight, midnight + 2e-7):
        cold = assess(request(), rules_with(), ts)
        warm_rules = rules_with()
        assess(request(), warm_rules, midnight - 30.0)  # caches the day before
        warm = assess(request(), warm_rules, ts)
        assert isinstance(cold, Charge) and isinstance(warm, Charge)
        assert cold.day == warm.day == (date(2026, 11, 23) if ts < midnight else date(2026, 11, 24))


@pytest.mark.parametrize(
    ("last_instant", "first_instant", "day_hours"),
    [
        # Sunday 8 March 2026: clocks jump 02:00 EST -> 03:00 EDT, a 23-hour day.
        (utc(2026, 3, 9, 3, 59, 59), utc(2026, 3, 9, 4, 0), 23),
        # Sunday 1 November 2026: clocks go back 02:00 EDT -> 01:00 EST, a 25-hour day.
        (utc(2026, 11, 2, 4, 59, 59), utc(2026, 11, 2, 5, 0), 25),
    ],
)
def test_new_york_dst_days_of_2026(
    last_instant: datetime, first_instant: datetime, day_hours: int
) -> None:
    rules = rules_with(acme={"daily_quota": 2, "timezone": "America/New_York"})
    counters = MemoryCounters()
    day_began = last_instant - timedelta(hours=day_hours) + timedelta(seconds=1)
    assert accepted(send(rules, counters, day_began, 1)) == 1  # first second of the local day
    verdicts = send(rules, counters, last_instant, 2)  # last second of the same local day
    assert accepted(verdicts) == 1
    assert verdicts[1].action.endswith("sending resumes at 00:00 America/New_York")
    # One second earlier than the day's start belongs to the previous day.
    assert accepted(send(rules, counters, day_began - timedelta(seconds=1), 2)) == 2
    assert accepted(send(rules, counters, first_instant, 3)) == 2


def test_pacific_chatham_rolls_over_at_its_own_midnight() -> None:
    # Chatham is UTC+13:45 in November (daylight time): midnight is 10:15 UTC.
    rules = rules_with(acme={"daily_quota": 1, "timezone": "Pacific/Chatham"})
    counters = MemoryCounters()
    assert accepted(send(rules, counters, utc(2026, 11, 23, 10, 14, 59), 2)) == 1
    assert accepted(send(rules, counters, utc(2026, 11, 23, 10, 15, 0), 2)) == 1
    assert counters.counts == {("acme", date(2026, 11, 23)): 1, ("acme", date(2026, 11, 24)): 1}


def test_day_start_where_dst_swallows_midnight() -> None:
    # Cuba springs forward at midnight: 8 March 2026 begins at 01:00.
    start = day_start(date(2026, 3, 8), ZoneInfo("America/Havana"))
    assert (start.hour, start.minute) == (1, 0)


def test_quota_zero_refuses_everything() -> None:
    rules, counters = rules_with(acme={"daily_quota": 0}), MemoryCounters()
    verdict = send(rules, counters, utc(2026, 11, 23, 12), 1)[0]
    assert verdict.action.startswith("452 4.7.1 daily quota of 0 reached for acme")


# ---- warm-up ---------------------------------------------------------------------------------

WARMUP = [
    {"first_day": "2026-11-02", "last_day": "2026-11-04", "daily_cap": 200},
    {"first_day": "2026-11-05", "last_day": "2026-11-08", "daily_cap": 500},
]


@pytest.mark.parametrize(
    ("when", "limit"),
    [
        (utc(2026, 11, 1, 12), 5000),  # before the first stage: no cap
        (utc(2026, 11, 2, 12), 200),
        (utc(2026, 11, 4, 22, 59), 200),  # 23:59 Paris, last day of stage 1
        (utc(2026, 11, 4, 23, 0), 500),  # 00:00 Paris, first day of stage 2
        (utc(2026, 11, 9, 12), 5000),  # after the last stage
    ],
)
def test_warmup_cap_applies_on_its_local_days(when: datetime, limit: int) -> None:
    step = assess(request(), rules_with(acme={"warmup": WARMUP}), when)
    assert isinstance(step, Charge) and step.limit == limit


def test_warmup_cap_below_quota_is_the_limit_and_is_named_so() -> None:
    rules = rules_with(acme={"warmup": [{**WARMUP[0], "daily_cap": 3}]})
    counters = MemoryCounters()
    verdicts = send(rules, counters, utc(2026, 11, 3, 9), 5)
    assert accepted(verdicts) == 3
    assert verdicts[3].action == (
        "452 4.7.1 daily warm-up limit of 3 reached for acme; sending resumes at 00:00 Europe/Paris"
    )
    # The warning threshold follows the day's limit: ceil(0.8 * 3) = 3.
    kinds = [n.kind for v in verdicts for n in v.notices]
    assert kinds == ["warning", "limit"]


def test_warmup_cap_above_quota_does_not_raise_it() -> None:
    rules = rules_with(acme={"daily_quota": 2, "warmup": [{**WARMUP[0], "daily_cap": 10}]})
    assert accepted(send(rules, MemoryCounters(), utc(2026, 11, 3, 9), 5)) == 2


# ---- notices ---------------------------------------------------------------------------------


def test_warning_and_limit_notice_are_sent_once_per_day() -> None:
    rules, counters = rules_with(acme={"daily_quota": 10}), MemoryCounters()
    day1 = send(rules, counters, utc(2026, 11, 23, 9), 25)
    notices = [(i + 1, n) for i, v in enumerate(day1) for n in v.notices]
    assert [(i, n.kind) for i, n in notices] == [(8, "warning"), (10, "limit")]
    warning, limit = notices[0][1], notices[1][1]
    assert (warning.sender, warning.to) == ("noreply@relay.example.net", "ops@acme.example")
    assert warning.subject == "Acme Corp: 80 % of today's quota used"
    assert (
        warning.body == "Hello Acme Corp,\n\n8 of 10 messages sent on 2026-11-23 (Europe/Paris).\n"
    )
    assert limit.subject == "Acme Corp: daily quota of 10 reached"
    assert limit.body == "Sending resumes at 2026-11-24 00:00 Europe/Paris.\n"
    # The next local day has its own warning.
    day2 = send(rules, counters, utc(2026, 11, 24, 9), 9)
    assert [n.kind for v in day2 for n in v.notices] == ["warning"]


def test_a_warning_claimed_past_its_threshold_names_the_threshold() -> None:
    """With quota credit (policyd/credit.py) the Redis store may claim the warning a few
    recipients past it: the subject keeps the threshold, the body says what was sent."""
    rules = rules_with(acme={"daily_quota": 1000})
    charge = assess(request(), rules, utc(2026, 11, 23, 9))
    assert isinstance(charge, Charge)
    verdict = conclude(charge, Outcome(ChargeStatus.ACCEPTED, 810, warn=True), rules)
    (warning,) = verdict.notices
    assert warning.subject == "Acme Corp: 80 % of today's quota used"
    assert warning.body.startswith("Hello Acme Corp,\n\n810 of 1000 messages sent on 2026-11-23")


def test_warning_threshold_rounds_up_without_float_noise() -> None:
    assert warn_threshold(5000, 0.8) == 4000
    assert warn_threshold(3, 0.8) == 3
    assert warn_threshold(10, 0.85) == 9
    assert warn_threshold(0, 0.8) == 1


def test_warning_due_after_a_lowered_limit_is_still_sent_once() -> None:
    # 5 sent under a quota of 100; a reload lowers it to 6: the threshold (5) is already passed.
    counters = MemoryCounters()
    send(rules_with(acme={"daily_quota": 100}), counters, utc(2026, 11, 23, 9), 5)
    later = send(rules_with(acme={"daily_quota": 6}), counters, utc(2026, 11, 23, 10), 3)
    assert [n.kind for v in later for n in v.notices] == ["warning", "limit"]


# ---- account status, flags, sender domains, sizes ------------------------------------------


def test_suspended_and_terminated_accounts_get_a_5xx_with_the_reason() -> None:
    rules, now = rules_with(), utc(2026, 11, 23, 9)
    suspended = assess(request("MAIL", login="globex", sender="a@globex.example"), rules, now)
    assert suspended == Verdict(
        "554 5.7.1 account globex is suspended: unpaid invoice 2026-117",
        Refusal.SUSPENDED,
        "globex",
    )
    terminated = assess(request(login="initech", sender="a@initech.example"), rules, now)
    assert isinstance(terminated, Verdict)
    assert terminated.action == "554 5.7.1 account initech is terminated: contract ended"
    assert terminated.refusal is Refusal.TERMINATED


def test_status_reason_cannot_break_the_protocol_line() -> None:
    rules = rules_with(globex={"status_reason": "line one\nline two\r\n" + "x" * 500})
    verdict = assess(request(login="globex"), rules, utc(2026, 11, 23, 9))
    assert isinstance(verdict, Verdict)
    assert "\n" not in verdict.action and "\r" not in verdict.action
    assert len(verdict.action) < 300
    # control characters become single spaces; the reason is cut to 200 characters with "..."
    reason = "line one line two " + "x" * 179 + "..."
    assert len(reason) == 200
    assert verdict.action.startswith("554 5.7.1 account globex is suspended: line one line two x")
    assert verdict.action.endswith("x...")
    assert verdict == Verdict(
        "554 5.7.1 account globex is suspended: " + reason, Refusal.SUSPENDED, "globex"
    )


def test_complaint_flag_gives_a_temporary_refusal() -> None:
    rules, counters = rules_with(), MemoryCounters()
    counters.flags["acme"] = "FBL report from example.org"
    verdict = send(rules, counters, utc(2026, 11, 23, 9))[0]
    assert verdict.action == (
        "450 4.7.1 account acme is temporarily disabled pending complaint review"
    )
    assert verdict.refusal is Refusal.COMPLAINT
    assert counters.counts == {}


@pytest.mark.parametrize(
    ("sender", "ok"),
    [
        ("news@acme.example", True),
        ("News@ACME-Mail.Example", True),
        ("news@sub.acme.example", False),
        ("news@acme.example.evil.example", False),
        ("", False),  # null sender: it has no domain of the customer's
        ("no-at-sign", False),
    ],
)
def test_sender_domain_must_be_one_of_the_customers(sender: str, ok: bool) -> None:
    for state in ("MAIL", "RCPT"):
        verdict = decide(
            request(state, sender=sender), rules_with(), MemoryCounters(), utc(2026, 11, 23, 9)
        )
        if ok:
            assert verdict.action == "DUNNO"
        else:
            assert verdict.action.startswith("553 5.7.1 sender domain ")
            assert verdict.refusal is Refusal.SENDER_DOMAIN


def test_idn_sender_domain_matches_its_ascii_form() -> None:
    rules = rules_with(acme={"domains": ["xn--bcher-kva.example"]})
    verdict = decide(
        request(sender="info@bücher.example"), rules, MemoryCounters(), utc(2026, 11, 23, 9)
    )
    assert verdict.action == "DUNNO"


@pytest.mark.parametrize("state", ["MAIL", "RCPT", "END-OF-MESSAGE"])
def test_message_over_the_plan_size_is_refused_552(state: str) -> None:
    rules, counters = rules_with(acme={"max_message_bytes": 1000}), MemoryCounters()
    over = decide(request(state, size=1001), rules, counters, utc(2026, 11, 23, 9))
    assert over.action == (
        "552 5.3.4 message size 1001 bytes exceeds the limit of 1000 bytes for acme"
    )
    assert decide(request(state, size=1000), rules, counters, utc(2026, 11, 23, 9)).action == (
        "DUNNO"
    )


def test_only_rcpt_counts() -> None:
    rules, counters = rules_with(), MemoryCounters()
    for state in ("CONNECT", "EHLO", "MAIL", "DATA", "END-OF-MESSAGE", "VRFY"):
        assert decide(request(state), rules, counters, utc(2026, 11, 23, 9)).action == "DUNNO"
    assert counters.counts == {}
    decide(request("RCPT"), rules, counters, utc(2026, 11, 23, 9))
    assert counters.counts == {("acme", date(2026, 11, 23)): 1}


def test_unauthenticated_and_unknown_logins_are_not_ours() -> None:
    rules, counters = rules_with(acme={"daily_quota": 0}), MemoryCounters()
    for login in ("", "someone-else"):
        assert decide(request(login=login), rules, counters, utc(2026, 11, 23, 9)) == Verdict(
            "DUNNO"
        )


def test_store_unavailable_defers_or_lets_through_as_configured() -> None:
    rules = rules_with()
    step = assess(request(), rules, utc(2026, 11, 23, 9))
    assert isinstance(step, Charge)
    down = Outcome(ChargeStatus.UNAVAILABLE)
    assert step.customer.id == "acme"
    defer = conclude(step, down, rules)
    assert defer.action.startswith("DEFER_IF_PERMIT 4.3.0 ")
    assert defer == Verdict(
        "DEFER_IF_PERMIT 4.3.0 quota service temporarily unavailable, try again later",
        Refusal.STORE_ERROR,
        "acme",
    )
    assert conclude(step, down, rules, fail_open=True) == Verdict(
        "DUNNO", Refusal.STORE_ERROR, "acme"
    )


def test_sender_domain_reply_names_the_owned_domains_sorted_and_cleaned() -> None:
    rules = rules_with(acme={"domains": ["Zeta.example.", "acme.example", "acme-mail.example"]})
    verdict = assess(request(sender="x@other.example"), rules, utc(2026, 11, 23, 9))
    assert verdict == Verdict(
        "553 5.7.1 sender domain other.example is not registered for acme; "
        "use an address at acme-mail.example, acme.example, zeta.example",
        Refusal.SENDER_DOMAIN,
        "acme",
    )
    no_domains = rules_with(acme={"domains": []})
    verdict = assess(request(sender="x@acme.example"), no_domains, utc(2026, 11, 23, 9))
    assert verdict == Verdict(
        "553 5.7.1 sender domain acme.example is not registered for acme; "
        "use an address at one of its domains",
        Refusal.SENDER_DOMAIN,
        "acme",
    )


def test_sender_domain_reply_stays_one_short_line() -> None:
    many = [f"brand-{i:03}.example" for i in range(100)]
    rules = rules_with(acme={"domains": many})
    verdict = assess(request(sender="x@" + "y" * 300 + ".example"), rules, utc(2026, 11, 23, 9))
    assert isinstance(verdict, Verdict) and verdict.refusal is Refusal.SENDER_DOMAIN
    assert len(verdict.action) < 512 and "\n" not in verdict.action  # RFC 5321 4.5.3.1.5
