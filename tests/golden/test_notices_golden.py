"""Golden notices: every notice kind rendered from the example repository's templates.

The repository's policies/notifications/*.txt go through the compiler into
policy.json and through the daemon's own loader and renderer, as on a relay;
`pytest tests/golden --update-golden` rewrites tests/golden/notices/<kind>.txt.
"""

from __future__ import annotations

import dataclasses
import difflib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from feedback.corpus import corpus_dir
from relayops.compile.policy import policy_rules
from relayops.loader import load_repo
from relayops.policyd.notices import (
    KINDS,
    NoticeRequest,
    render,
    render_request,
    resumed_values,
    status_values,
)
from relayops.policyd.notify import build_message
from relayops.policyd.rules import (
    Charge,
    ChargeStatus,
    Notice,
    Outcome,
    Rules,
    conclude,
    parse_rules,
    warn_threshold,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NOW = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
# A real ARF report from the shared corpus (mail from outside is test data, not invented).
REPORT = (corpus_dir() / "arf-01.eml").read_bytes()


def example_rules() -> Rules:
    result = load_repo(ROOT, today=date(2026, 11, 23))
    assert result.repo is not None, "\n".join(map(str, result.findings))
    for host in result.repo.inventories["production"].hosts:
        data = policy_rules(result.repo, host)
        if "acme" in data.customers:
            return parse_rules(data.model_dump(mode="json"))
    raise AssertionError("no production host serves acme")


def notice(kind: str, rules: Rules) -> Notice:
    acme = rules.customers["acme"]
    day = NOW.astimezone(acme.tz).date()
    limit = acme.limit_on(day)
    if kind in ("warning", "limit"):
        charge = Charge(acme, day, limit, warn_threshold(limit, acme.warn_ratio))
        outcome = (
            Outcome(ChargeStatus.ACCEPTED, charge.warn_at, warn=True)
            if kind == "warning"
            else Outcome(ChargeStatus.OVER_LIMIT, limit, limit_notice=True)
        )
        (found,) = conclude(charge, outcome, rules).notices
        return found
    made: Notice | None
    if kind == "resumed":
        made = render(kind, acme, rules, NOW, resumed_values(acme, day))
    elif kind in ("suspended", "terminated"):
        # acme is active in the example; the notice quotes the reason policy.json carries.
        changed = dataclasses.replace(acme, status=kind, status_reason="unpaid invoice 2026-117")
        made = render(kind, changed, rules, NOW, status_values(changed))
    else:
        context = {
            "complaint": {
                "feedback_type": "abuse",
                "recipient": "reader@isp.example",
                "arrival_date": "2026-11-30 14:02 UTC",
            },
            "disabled": {"reason": "a complaint from isp.example about a message of 2026-11-30"},
            "reenabled": {},
        }[kind]
        attachment = REPORT if kind == "complaint" else None
        made = render_request(NoticeRequest(kind, "acme", context, attachment), rules, NOW)
    assert made is not None
    return made


def shown(n: Notice) -> str:
    """The notice as a reader sees it, without the Date and Message-ID of the sending."""
    head = f"From: {n.sender}\nTo: {n.to}\nMailbox copy: {n.mailbox}\nSubject: {n.subject}\n"
    parts = ""
    if n.attachment is not None:
        message = build_message(n)
        types = [part.get_content_type() for part in message.walk()]
        parts = f"Parts: {', '.join(types)}\n"
    return head + parts + "\n" + n.body


@pytest.mark.parametrize("kind", KINDS)
def test_rendered_notice(kind: str, update_golden: bool) -> None:
    actual = shown(notice(kind, example_rules()))
    path = HERE / "notices" / f"{kind}.txt"
    if update_golden:
        path.write_text(actual)
        return
    expected = path.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                str(path), "actual",
            )
        )  # fmt: skip
        pytest.fail(f"{kind} notice differs (pytest --update-golden to accept):\n{diff}")
