"""Which notice is due when (pure tables), notice requests, and the daemon's notice paths."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayops.policyd.notices import (
    CONTEXT_FIELDS,
    NoticeError,
    NoticeRequest,
    check_request,
    days_moved,
    days_started,
    render_request,
    status_notices,
)
from relayops.policyd.notify import Notifier, build_message, recipients
from relayops.policyd.outbox import check_shape, queue_notice
from relayops.policyd.rules import Notice, Rules, RulesError, parse_rules
from relayops.policyd.server import PolicyServer
from relayops.policyd.store_sqlite import SqliteStore
from support.policyd import RULES

TEMPLATES = {
    kind: {"subject": f"$name: {kind}", "body": f"{kind} body for $customer on $day\n"}
    for kind in ("resumed", "complaint", "disabled", "reenabled", "suspended", "terminated")
}


def data(**statuses: str) -> dict[str, Any]:
    result = copy.deepcopy(RULES)
    result["service"]["mailbox_domain"] = "mailbox.relayops.invalid"
    result["notifications"].update(TEMPLATES)
    for cid, status in statuses.items():
        if status == "absent":
            del result["customers"][cid]
        else:
            result["customers"][cid]["status"] = status
    return result


def rules(**statuses: str) -> Rules:
    return parse_rules(data(**statuses))


# ---- status changes (at start and on reload) --------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "due"),
    [
        ("active", "suspended", ["suspended"]),
        ("active", "terminated", ["terminated"]),
        ("suspended", "terminated", ["terminated"]),
        ("terminated", "suspended", ["suspended"]),
        ("suspended", "suspended", []),  # no change (a new reason is not news)
        ("suspended", "active", []),  # lifted: no notice kind for it
        ("active", "active", []),
        (None, "suspended", []),  # the store never saw it: old news, not a change
    ],
)
def test_status_notice_is_due_only_for_a_change_into_suspended_or_terminated(
    before: str | None, after: str, due: list[str]
) -> None:
    changes = status_notices({"acme": before}, rules(acme=after))
    assert [(c.id, kind) for c, kind in changes] == [("acme", kind) for kind in due]


def test_unchanged_customers_get_nothing() -> None:
    # globex is suspended and initech terminated, as the store knew them.
    known = {"acme": "active", "globex": "suspended", "initech": "terminated"}
    assert status_notices(known, rules()) == []


def test_statuses_are_swapped_once_in_the_store(tmp_path: Path) -> None:
    async def main() -> list[dict[str, str | None]]:
        store = SqliteStore(tmp_path / "c.sqlite")
        await store.start()
        try:
            return [
                await store.swap_statuses({"acme": "active", "globex": "suspended"}),
                await store.swap_statuses({"acme": "suspended", "globex": "suspended"}),
                await store.swap_statuses({"acme": "suspended"}),
            ]
        finally:
            await store.close()

    assert asyncio.run(main()) == [
        {"acme": None, "globex": None},
        {"acme": "active", "globex": "suspended"},
        {"acme": "suspended"},
    ]


# ---- the day rolls over ------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "paris_days"),
    [
        # Paris midnight of 2026-12-01 is 2026-11-30 23:00 UTC.
        (utc(2026, 11, 30, 22, 30), utc(2026, 11, 30, 22, 59, 59), []),
        (utc(2026, 11, 30, 22, 30), utc(2026, 11, 30, 23, 0), [date(2026, 12, 1)]),  # inclusive
        (utc(2026, 11, 30, 23, 0), utc(2026, 11, 30, 23, 30), []),  # since is exclusive
        (
            utc(2026, 11, 29, 22, 0),
            utc(2026, 11, 30, 23, 0),
            [date(2026, 11, 30), date(2026, 12, 1)],
        ),
    ],
)
def test_days_started_yields_each_local_midnight_once(
    since: datetime, until: datetime, paris_days: list[date]
) -> None:
    found = [day for c, day in days_started(rules(), since, until) if c.id == "acme"]
    assert found == paris_days


def test_a_day_that_dst_starts_at_one_o_clock_begins_then() -> None:
    # America/Havana springs forward at midnight: 2026-03-08 begins at 01:00 local (05:00 UTC).
    changed = data()
    changed["customers"]["acme"]["timezone"] = "America/Havana"
    havana = parse_rules(changed)
    before = [
        d
        for c, d in days_started(havana, utc(2026, 3, 8, 4), utc(2026, 3, 8, 4, 59))
        if c.id == "acme"
    ]
    after = [
        d for c, d in days_started(havana, utc(2026, 3, 8, 4), utc(2026, 3, 8, 5)) if c.id == "acme"
    ]
    assert (before, after) == ([], [date(2026, 3, 8)])


def _zoned(zone: str) -> Rules:
    changed = data()
    changed["customers"]["acme"]["timezone"] = zone
    return parse_rules(changed)


@pytest.mark.parametrize(
    ("old", "new", "now", "days"),
    [
        # 2026-11-30 20:00 UTC: Paris is on 11-30, Kiritimati (+14) on 12-01.
        ("Europe/Paris", "Pacific/Kiritimati", utc(2026, 11, 30, 20), [date(2026, 12, 1)]),
        # 09:59 UTC: Kiritimati is still on 11-30 (its midnight is at 10:00 UTC).
        ("Europe/Paris", "Pacific/Kiritimati", utc(2026, 11, 30, 9, 59), []),
        ("Europe/Paris", "Pacific/Kiritimati", utc(2026, 11, 30, 10), [date(2026, 12, 1)]),
        # -12 to +14: 26 hours east, two dates passed over at 11:00 UTC.
        ("Etc/GMT+12", "Pacific/Kiritimati", utc(2026, 11, 30, 11), [date(2026, 11, 30),
                                                                    date(2026, 12, 1)]),
        # Westwards (an earlier date) or the same zone: no day begins.
        ("Pacific/Kiritimati", "Europe/Paris", utc(2026, 11, 30, 20), []),
        ("Europe/Paris", "Europe/Paris", utc(2026, 11, 30, 23, 30), []),
    ],
)  # fmt: skip
def test_days_moved_by_a_time_zone_change(
    old: str, new: str, now: datetime, days: list[date]
) -> None:
    found = [(c.id, d) for c, d in days_moved(_zoned(old), _zoned(new), now)]
    assert found == [("acme", d) for d in days]


def test_days_moved_ignores_customers_new_in_the_reload() -> None:
    before = parse_rules(data(acme="absent"))
    assert list(days_moved(before, _zoned("Pacific/Kiritimati"), utc(2026, 11, 30, 20))) == []


# ---- notice requests ---------------------------------------------------------------------

NOW = utc(2026, 11, 30, 12)
REPORT = b"From: fbl@isp.example\r\nSubject: complaint\r\n\r\nreport\r\n"


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (NoticeRequest("warning", "acme"), "notice kind 'warning' cannot be requested; one of: "
         "complaint, disabled, reenabled, suspended, terminated"),
        (NoticeRequest("disabled", "nobody", {"reason": "x"}),
         "disabled notice: unknown customer 'nobody'"),
        (NoticeRequest("disabled", "acme"),
         "disabled notice for acme: context needs exactly ['reason']; missing ['reason'], "
         "unexpected []"),
        (NoticeRequest("reenabled", "acme", {"reason": "x"}),
         "reenabled notice for acme: context needs exactly []; missing [], unexpected ['reason']"),
        (NoticeRequest("disabled", "acme", {"reason": "x" * 201}),
         "disabled notice for acme: context.reason is too long"),
        (NoticeRequest("complaint", "acme", dict.fromkeys(CONTEXT_FIELDS["complaint"], "x")),
         "complaint notice for acme: the original report is missing"),
        (NoticeRequest("disabled", "acme", {"reason": "x"}, REPORT),
         "disabled notice for acme: only a complaint has an attachment"),
    ],
)  # fmt: skip
def test_a_request_that_cannot_be_sent_says_why(request_: NoticeRequest, error: str) -> None:
    with pytest.raises(NoticeError) as info:
        check_request(request_, rules())
    assert str(info.value) == error


def test_a_complaint_carries_the_original_report_as_message_rfc822() -> None:
    context = {"feedback_type": "abuse", "recipient": "reader@isp.example", "arrival_date": "x"}
    notice = render_request(NoticeRequest("complaint", "acme", context, REPORT), rules(), NOW)
    assert notice is not None
    assert (notice.subject, notice.to, notice.mailbox) == (
        "Acme Corp: complaint",
        "ops@acme.example",
        "acme@mailbox.relayops.invalid",
    )
    message = build_message(notice)
    assert message.get_content_type() == "multipart/mixed"
    text, attached = message.get_payload()  # type: ignore[misc]
    assert text.get_payload(decode=True) == b"complaint body for acme on 2026-11-30\n"
    assert attached.get_content_type() == "message/rfc822"
    assert attached.get_payload()[0]["Subject"] == "complaint"
    assert b"\r\n\r\nreport\r\n" in REPORT and b"report" in message.as_bytes()
    assert recipients(notice) == ["ops@acme.example", "acme@mailbox.relayops.invalid"]


def test_a_notice_without_a_mailbox_domain_goes_to_the_contact_only() -> None:
    old = data()
    del old["service"]["mailbox_domain"]
    notice = render_request(NoticeRequest("reenabled", "acme"), parse_rules(old), NOW)
    assert notice is not None and recipients(notice) == ["ops@acme.example"]


def test_a_mailbox_domain_must_be_a_dns_name() -> None:
    bad = data()
    bad["service"]["mailbox_domain"] = "mailbox.invalid>\r\nRCPT TO:<x@evil.example"
    with pytest.raises(RulesError) as info:
        parse_rules(bad)
    assert "service.mailbox_domain: String should match pattern" in str(info.value)


def test_rules_of_an_older_compiler_have_no_template_for_the_new_kinds() -> None:
    old = copy.deepcopy(RULES)  # warning and limit only
    assert render_request(NoticeRequest("reenabled", "acme"), parse_rules(old), NOW) is None


def test_request_round_trips_through_json() -> None:
    request = NoticeRequest("complaint", "acme", {"a": "b"}, b"\x00\xff raw")
    assert NoticeRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[]", "notice request is not a JSON object"),
        ('{"kind": 1, "customer": "acme"}', "notice request: kind and customer must be strings"),
        ('{"kind": "disabled", "customer": "acme", "context": {"reason": 1}}',
         "notice request: context must map strings to strings"),
        ('{"kind": "complaint", "customer": "acme", "attachment": "***"}',
         "notice request: attachment is not valid base64"),
    ],
)  # fmt: skip
def test_malformed_outbox_entries_are_refused(text: str, error: str) -> None:
    with pytest.raises(NoticeError) as info:
        NoticeRequest.from_json(text)
    assert str(info.value) == error


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_any_outbox_entry_parses_or_is_refused(text: str | bytes) -> None:
    try:
        request = NoticeRequest.from_json(text)
    except NoticeError:
        return
    with contextlib.suppress(NoticeError):  # anything else fails the test
        render_request(request, rules(), NOW)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_attached_report_builds_a_message(report: bytes) -> None:
    notice = Notice("complaint", "acme", "n@relay.example", "ops@acme.example", "s", "b", report)
    assert build_message(notice).as_bytes()


def test_queue_notice_checks_the_shape_before_touching_a_store(tmp_path: Path) -> None:
    with pytest.raises(NoticeError):
        check_shape(NoticeRequest("disabled", "acme", {}))
    with pytest.raises(NoticeError) as info:
        queue_notice("mysql://x", NoticeRequest("reenabled", "acme"))
    assert str(info.value) == "expected sqlite:PATH or a Redis URL, got 'mysql://x'"
    assert not list(tmp_path.iterdir())


# ---- the daemon's notice paths, on a real SQLite store --------------------------------


class Captured(Notifier):
    def __init__(self) -> None:
        super().__init__(None)
        self.notices: list[Notice] = []

    def submit(self, notice: Notice) -> None:
        self.notices.append(notice)


def server(tmp_path: Path, clock: datetime) -> tuple[PolicyServer, Captured]:
    captured = Captured()
    policy = PolicyServer(
        rules=rules(),
        rules_path=None,
        store=SqliteStore(tmp_path / "c.sqlite"),
        notifier=captured,
        fail_open=False,
        clock=lambda: clock,
    )
    return policy, captured


def test_resumed_is_sent_once_after_a_day_at_the_limit(tmp_path: Path) -> None:
    async def main() -> list[Notice]:
        # The clock is later than the midnight found: the notice names the day that began.
        policy, captured = server(tmp_path, utc(2026, 12, 1, 9))
        await policy.store.start()
        try:
            assert await policy.store.claim("acme", date(2026, 11, 30), "limit")
            since, until = utc(2026, 11, 30, 22, 59), utc(2026, 11, 30, 23, 0, 30)
            await policy.roll_days(since, until)
            await policy.roll_days(since, until)  # a second sweep (or daemon): claimed
            return captured.notices
        finally:
            await policy.store.close()

    notices = asyncio.run(main())
    # acme (Paris) reached its limit on 11-30; globex and initech did not.
    assert [(n.kind, n.customer, n.subject) for n in notices] == [
        ("resumed", "acme", "Acme Corp: resumed")
    ]
    assert notices[0].body == "resumed body for acme on 2026-12-01\n"


def test_no_resumed_without_a_limit_the_day_before(tmp_path: Path) -> None:
    async def main() -> list[Notice]:
        policy, captured = server(tmp_path, utc(2026, 11, 30, 23, 0, 30))
        await policy.store.start()
        try:
            assert await policy.store.claim("acme", date(2026, 11, 29), "limit")  # two days ago
            await policy.roll_days(utc(2026, 11, 30, 22, 59), utc(2026, 11, 30, 23, 0, 30))
            return captured.notices
        finally:
            await policy.store.close()

    assert asyncio.run(main()) == []


def test_reload_into_a_later_date_sends_resumed_after_a_day_at_the_limit(
    tmp_path: Path,
) -> None:
    """A deploy moves acme from Paris (11-30, limit reached) to Kiritimati (12-01): the
    daemon's counters start 12-01 at once, and the SIGHUP reload says so, once."""
    path = tmp_path / "policy.json"
    moved = data()
    moved["customers"]["acme"]["timezone"] = "Pacific/Kiritimati"
    path.write_text(json.dumps(moved))

    async def main() -> list[Notice]:
        policy, captured = server(tmp_path, utc(2026, 11, 30, 20))
        policy.rules_path = path
        await policy.store.start()
        try:
            assert await policy.store.claim("acme", date(2026, 11, 30), "limit")
            assert await policy.reload()
            assert await policy.reload()  # the same rules again: nothing moves
            await asyncio.sleep(0.1)  # the notices are sent off the reload's path
            await policy.close_tasks()
            return captured.notices
        finally:
            await policy.store.close()

    notices = asyncio.run(main())
    assert [(n.kind, n.customer, n.subject) for n in notices] == [
        ("resumed", "acme", "Acme Corp: resumed")
    ]
    assert notices[0].body == "resumed body for acme on 2026-12-01\n"


def test_outbox_requests_are_sent_once(tmp_path: Path) -> None:
    queue_notice(f"sqlite:{tmp_path / 'c.sqlite'}", NoticeRequest("reenabled", "acme"))

    async def main() -> tuple[int, int, list[Notice]]:
        policy, captured = server(tmp_path, NOW)
        await policy.store.start()
        try:
            return await policy.drain_outbox(), await policy.drain_outbox(), captured.notices
        finally:
            await policy.store.close()

    first, second, notices = asyncio.run(main())
    assert (first, second) == (1, 0)
    assert [(n.kind, n.to, n.mailbox) for n in notices] == [
        ("reenabled", "ops@acme.example", "acme@mailbox.relayops.invalid")
    ]


def test_the_policy_daemon_imports_nothing_else_of_relayops() -> None:
    """The relays install only the daemon's wheel: relayops.policyd must stand alone."""
    import ast

    import relayops.policyd

    package = Path(relayops.policyd.__file__).parent
    outside = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            outside += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] == "relayops" and not n.startswith("relayops.policyd")
            ]
    assert outside == []
