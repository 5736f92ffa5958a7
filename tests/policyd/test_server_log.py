"""The refusal log line: logfmt quoting, and counting even when INFO is off."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relayops.policyd.notify import Notifier
from relayops.policyd.rules import parse_rules
from relayops.policyd.server import PolicyServer, _logfmt_value
from relayops.policyd.store_sqlite import SqliteStore
from support.policyd import request, rules_data


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("acme", "acme"),
        ("a-b_c.d@e:f/g+h", "a-b_c.d@e:f/g+h"),
        ("société", "société"),
        (42, "42"),
        (None, "None"),
        ("", '""'),
        ("a b", '"a b"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("a=b", '"a=b"'),
        ("x\n", '"x\n"'),
    ],
)
def test_logfmt_value_quotes_exactly_what_is_not_a_bare_word(value: object, shown: str) -> None:
    assert _logfmt_value(value) == shown


def _server(tmp_path: Path) -> PolicyServer:
    return PolicyServer(
        rules=parse_rules(rules_data()),
        rules_path=None,
        store=SqliteStore(tmp_path / "counters.db"),
        notifier=Notifier(None),
        fail_open=False,
        clock=lambda: datetime(2026, 11, 23, 9, tzinfo=UTC),
    )


def test_refusals_are_counted_and_logged_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(tmp_path)
    with caplog.at_level(logging.INFO, logger="relayops.policyd"):
        answer = server.handle(request("MAIL", login="globex", sender="a@globex.example"))
    assert isinstance(answer, str) and answer.startswith("554 5.7.1 account globex is suspended")
    assert server.refusals == {"suspended": 1}
    [record] = [r for r in caplog.records if r.name == "relayops.policyd"]
    assert record.getMessage().startswith("event=refused reason=suspended customer=globex ")


def test_refusals_are_counted_without_logging_when_info_is_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(tmp_path)
    with caplog.at_level(logging.WARNING, logger="relayops.policyd"):
        for _ in range(3):
            server.handle(request("MAIL", login="globex", sender="a@globex.example"))
    assert server.refusals == {"suspended": 3}
    assert [r for r in caplog.records if r.name == "relayops.policyd"] == []
