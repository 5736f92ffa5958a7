"""The relay's log read as delivery attempts per dedicated IP and ISP class (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from relayops.warmup.deliveries import Delivery, parse_line, read_maillog
from relayops.warmup.rates import figures

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TSS04 = (
    "421 4.7.0 [TSS04] Messages from 198.18.0.21 temporarily deferred due to unexpected "
    "volume or user complaints"
)
LINES = {
    "sent": (
        "Dec 01 08:00:01 o1 postfix-ip-dedicated-1/isp-gmail/smtp[900]: 4XyZab12: "
        "to=<A@Gmail.com>, relay=mx.gmail.com[192.0.2.9]:25, delay=0.5, "
        "delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 OK  id=1)"
    ),
    "deferred": (
        "2026-12-01T08:00:02.123456+01:00 relay1 postfix-ip-dedicated-1/isp-yahoo/smtp[901]: "
        "5AbCdE34: to=<b@yahoo.com>, relay=mx.yahoo.com[192.0.2.9]:25, delay=0.5, "
        "delays=0.1/0/0.2/0.2, dsn=4.7.0, status=deferred (host mx.yahoo.com[192.0.2.9] "
        f"said: {TSS04} (in reply to MAIL FROM command))"
    ),
    "bounced": (
        "Dec  1 08:00:03.250117 relay1 postfix-ip-dedicated-2/smtp[902]: 6ZzZzZ56: "
        "to=<c@example.org>, relay=none, delay=1, delays=1/0/0/0, dsn=5.4.4, "
        "status=bounced (Host or domain name not found. Name service error for "
        "name=example.org type=A: Host not found)"
    ),
}


def test_each_status_with_ip_class_domain_and_reply() -> None:
    utc = ZoneInfo("UTC")
    sent, deferred, bounced = (parse_line(LINES[k], zone=utc, now=NOW) for k in LINES)
    assert sent == Delivery(
        datetime(2026, 12, 1, 8, 0, 1, tzinfo=utc),
        "dedicated-1",
        "gmail",
        "gmail.com",
        "sent",
        "2.0.0",
        "250 2.0.0 OK  id=1",
        "ip-dedicated-1",
    )
    assert deferred is not None
    assert (deferred.ip, deferred.isp_class, deferred.status, deferred.dsn) == (
        "dedicated-1",
        "yahoo",
        "deferred",
        "4.7.0",
    )
    assert deferred.reply == TSS04
    assert deferred.at == datetime(2026, 12, 1, 7, 0, 2, 123456, tzinfo=UTC)
    assert bounced is not None
    assert (bounced.ip, bounced.isp_class, bounced.status) == ("dedicated-2", "other", "bounced")
    assert bounced.reply.startswith("Host or domain name not found.")


def test_traditional_timestamps_take_the_zone_and_the_nearest_past_year() -> None:
    paris = ZoneInfo("Europe/Paris")
    line = LINES["sent"].replace("Dec 01", "Dec 31")
    found = parse_line(line, zone=paris, now=NOW)  # Dec 31 is in the future: last year's
    assert found is not None and found.at == datetime(2025, 12, 31, 8, 0, 1, tzinfo=paris)
    found = parse_line(LINES["sent"].replace("Dec 01", "Dec  2"), zone=paris, now=NOW)
    assert found is not None and found.at.year == 2026  # a day ahead: clock skew, this year


def test_lines_that_are_not_a_dedicated_ips_delivery_are_skipped() -> None:
    utc = ZoneInfo("UTC")
    others = [
        LINES["sent"].replace("postfix-ip-dedicated-1", "postfix-pool-shared-eu"),  # a pool
        LINES["sent"].replace("postfix-ip-dedicated-1", "postfix"),  # submission instance
        LINES["sent"].replace("status=sent", "status=expired"),
        "Dec  1 08:00:01 relay1 postfix-ip-dedicated-1/qmgr[1]: 4XyZab12: removed",
        "Dez 01 08:00:01 " + LINES["sent"][16:],  # not a syslog month
        LINES["sent"].replace("/smtp[900]", "/qmgr[900]"),  # not a delivery agent
        "",
    ]
    assert [parse_line(x, zone=utc, now=NOW) for x in others] == [None] * len(others)


def test_a_pools_lines_only_when_asked_for_back_off() -> None:
    """Back-off pauses every sending IP, a pool's too; warm-up reads dedicated IPs only."""
    line = LINES["deferred"].replace("postfix-ip-dedicated-1", "postfix-pool-shared-eu")
    assert parse_line(line, zone=ZoneInfo("UTC"), now=NOW) is None
    found = parse_line(line, zone=ZoneInfo("UTC"), now=NOW, pools=True)
    assert found is not None
    assert (found.ip, found.egress, found.isp_class, found.status, found.reply) == (
        "",
        "pool-shared-eu",
        "yahoo",
        "deferred",
        TSS04,
    )


@given(st.text(max_size=400))
def test_any_line_is_read_without_raising(line: str) -> None:
    parse_line(line, zone=ZoneInfo("UTC"), now=NOW)
    parse_line(LINES["deferred"][:60] + line, zone=ZoneInfo("UTC"), now=NOW)


def test_a_lab_relays_log_as_captured() -> None:
    """/var/log/postfix-ip-dedicated-1.log of the lab's relay1 (two runs of the lab Show):
    gmail.com delivered, blocked.lab refused (550 5.7.1), then the sink's smtpd dropping
    the session after 20 errors (421, deferred), and the DSNs to globex.example."""
    text = (Path(__file__).parent / "data" / "lab-dedicated-1.log").read_text()
    found = list(read_maillog(text.splitlines(), zone=ZoneInfo("UTC"), now=NOW))
    assert len(found) == 62
    tallies = figures(found, ip="dedicated-1", days={date(2026, 12, 1)}, zone=ZoneInfo("UTC"))
    gmail, other = tallies.by_class["gmail"], tallies.by_class["other"]
    assert (gmail.sent, gmail.deferred, gmail.bounced) == (25, 0, 0)
    assert (other.sent, other.deferred, other.bounced) == (2, 5, 30)
    assert set(tallies.by_class) == {"gmail", "other"}
    refused = next(d for d in found if d.status == "bounced")
    assert refused.reply == (
        "550 5.7.1 Service unavailable, Client host [198.18.0.111] blocked using "
        "reputation.lab; low reputation of the sending IP"
    )
