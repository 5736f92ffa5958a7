"""Real daemons: a reload that suspends a customer mails one notice; the outbox is drained.

The daemons run as processes (support/policyd.py) with --notify-smtp pointing at
a local SMTP sink; SQLite for one daemon, Redis for three sharing one store.
"""

from __future__ import annotations

import copy
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from relayops.policyd.notices import NoticeRequest
from relayops.policyd.outbox import queue_notice
from support.policyd import RULES, Daemon, RedisServer, write_rules
from support.smtp_sink import Received, SmtpSink

pytestmark = pytest.mark.real

TEMPLATES = {
    "suspended": {
        "subject": "$name: subscription suspended",
        "body": "Suspended on $day ($timezone): $reason\n",
    },
    "terminated": {"subject": "$name: subscription terminated", "body": "Reason: $reason\n"},
    "disabled": {"subject": "$name: sending disabled", "body": "Pending review: $reason\n"},
}


def rules_with(**statuses: tuple[str, str | None]) -> dict[str, Any]:
    data = copy.deepcopy(RULES)
    data["service"]["mailbox_domain"] = "mailbox.relayops.invalid"
    data["notifications"].update(TEMPLATES)
    for cid, (status, reason) in statuses.items():
        data["customers"][cid].update(status=status, status_reason=reason)
    return data


def settle(sink: SmtpSink, count: int, quiet: float = 2.0) -> list[Received]:
    """The sink's messages once `count` arrived and nothing more came for `quiet` seconds."""
    sink.wait_for(count, timeout=20)
    time.sleep(quiet)
    return list(sink.messages)


def test_a_reload_that_suspends_a_customer_sends_one_notice(
    tmp_path: Path, daemons: list[Daemon], smtp_sink: SmtpSink
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_with())
    daemon = Daemon(
        tmp_path, rules, f"sqlite:{tmp_path / 'c.sqlite'}", "--notify-smtp",
        f"127.0.0.1:{smtp_sink.port}",
    )  # fmt: skip
    daemons.append(daemon.start())
    write_rules(rules, rules_with(acme=("suspended", "unpaid invoice 2026-200")))
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_log("event=rules_reloaded")
    # The same rules again: no status change, no second notice.
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_log("event=rules_reloaded", 2)
    received = settle(smtp_sink, 1)
    assert len(received) == 1
    notice = received[0]
    assert notice.mail_from == "noreply@relay.example.net"
    assert notice.rcpt_to == ["ops@acme.example", "acme@mailbox.relayops.invalid"]
    assert notice.message["Subject"] == "Acme Corp: subscription suspended"
    body = notice.message.get_payload(decode=True)
    assert isinstance(body, bytes)
    day = datetime.now(ZoneInfo("Europe/Paris")).date()  # (a test run across midnight fails)
    assert body.decode().rstrip() == f"Suspended on {day} (Europe/Paris): unpaid invoice 2026-200"
    assert "event=notice_sent kind=suspended customer=acme to=ops@acme.example" in daemon.log()
    # globex was suspended all along and initech terminated: no news, no notice.
    assert daemon.stop(signal.SIGTERM) == 0


def test_a_restart_with_a_status_change_sends_one_notice(
    tmp_path: Path, daemons: list[Daemon], smtp_sink: SmtpSink
) -> None:
    """A deploy with new code restarts the daemon instead of reloading it: same notice."""
    rules = write_rules(tmp_path / "policy.json", rules_with())
    store = f"sqlite:{tmp_path / 'c.sqlite'}"
    notify = ("--notify-smtp", f"127.0.0.1:{smtp_sink.port}")
    first = Daemon(tmp_path, rules, store, *notify, name="first")
    daemons.append(first.start())
    first.wait_log("event=listening")
    time.sleep(1.0)  # the start-up status swap is done
    assert first.stop(signal.SIGTERM) == 0
    write_rules(rules, rules_with(acme=("suspended", "unpaid invoice 2026-201")))
    second = Daemon(tmp_path, rules, store, *notify, name="second")
    daemons.append(second.start())
    received = settle(smtp_sink, 1)
    assert [m.message["Subject"] for m in received] == ["Acme Corp: subscription suspended"]
    # Restarted once more with the same rules: nothing new.
    assert second.stop(signal.SIGTERM) == 0
    third = Daemon(tmp_path, rules, store, *notify, name="third")
    daemons.append(third.start())
    assert len(settle(smtp_sink, 1)) == 1


def test_three_daemons_sharing_redis_send_one_notice_per_status_change(
    tmp_path: Path, daemons: list[Daemon], redis_server: RedisServer, smtp_sink: SmtpSink
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_with())
    notify = ("--notify-smtp", f"127.0.0.1:{smtp_sink.port}")
    trio = [
        Daemon(tmp_path, rules, redis_server.url, *notify, name=str(i)).start() for i in range(3)
    ]
    daemons.extend(trio)
    write_rules(rules, rules_with(acme=("terminated", "contract ended 2026-11-30")))
    for d in trio:
        d.send_signal(signal.SIGHUP)
    for d in trio:
        d.wait_log("event=rules_reloaded")
    received = settle(smtp_sink, 1)
    assert [m.message["Subject"] for m in received] == ["Acme Corp: subscription terminated"]

    # A request in the shared outbox is taken by exactly one of the three.
    queue_notice(redis_server.url, NoticeRequest("disabled", "acme", {"reason": "complaint 4711"}))
    received = settle(smtp_sink, 2)
    assert [m.message["Subject"] for m in received] == [
        "Acme Corp: subscription terminated",
        "Acme Corp: sending disabled",
    ]


def test_an_invalid_outbox_request_is_logged_not_sent(
    tmp_path: Path, daemons: list[Daemon], smtp_sink: SmtpSink
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_with())
    store = f"sqlite:{tmp_path / 'c.sqlite'}"
    daemon = Daemon(tmp_path, rules, store, "--notify-smtp", f"127.0.0.1:{smtp_sink.port}")
    daemons.append(daemon.start())
    queue_notice(store, NoticeRequest("disabled", "nobody", {"reason": "x"}))
    queue_notice(store, NoticeRequest("disabled", "acme", {"reason": "complaint 4712"}))
    received = settle(smtp_sink, 1)
    assert [m.message["Subject"] for m in received] == ["Acme Corp: sending disabled"]
    assert (
        "event=notice_refused error=\"disabled notice: unknown customer 'nobody'\"" in daemon.log()
    )
