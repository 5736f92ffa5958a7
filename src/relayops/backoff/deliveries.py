"""What the receivers answered each sending IP, per ISP class: read from Postfix's log.

Read by `relayops warmup` (dedicated IPs) on the operator's side and by the relay's
back-off watcher (every output instance, pools too): so it lives in relayops.backoff,
which the relay wheel carries; relayops.warmup.deliveries re-exports it.

A stand-in source until the feedback ledgers (h/feedback-loop) are merged: only
`read_maillog` knows the log format, so swapping it for the ledgers leaves `rates.py`
and `gate.py` as they are. The approach is feedback/maillog.py's (one regular
expression per line shape, a parser that never raises), here for the output
instances (compile/instances.py): their log tag `postfix-ip-<ip>/isp-<class>/smtp`
says which dedicated IP sent and through which ISP class's transport, so no queue-ID
tracking is needed. Each `to=<…>, …, status=sent|deferred|bounced` line is one
delivery attempt.

    Dec 01 07:00:01 o1 postfix-ip-dedicated-1/isp-yahoo/smtp[900]: 4XyZab12: to=<a@yahoo.com>,
        relay=mx.yahoo.com[192.0.2.9]:25, delay=0.5, delays=.., dsn=4.7.0, status=deferred
        (host mx.yahoo.com[192.0.2.9] said: 421 4.7.0 [TSS04] Messages from 192.0.2.20
        temporarily deferred due to unexpected volume or user complaints)

Timestamps: RFC 3339 (rsyslog's default on Debian 12) or the traditional
`Mmm dd hh:mm:ss[.ffffff]` (Postfix's own maillog_file), which has neither year nor
zone: the caller gives the zone, the year is the one that puts the line at most a
day in the future of `now`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from relayops.backoff.names import CLASS_PREFIX, INSTANCE_PREFIX

Status = Literal["sent", "deferred", "bounced"]
OTHER_CLASS = "other"  # a destination no ISP class names (the instance's default transport)

_TRADITIONAL = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d)(?:\.\d+)? "
)
_RFC3339 = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")
# `<syslog_name>/<program>[pid]`: syslog_name is the instance's name, with `/<transport>`
# for the class transports (their master.cf `-o syslog_name=`), the program smtp(8).
_LINE = re.compile(
    rf"\b{INSTANCE_PREFIX}(?P<egress>(?P<kind>ip|pool)-(?P<ip>[a-z0-9][a-z0-9-]*))"
    r"(?:/(?P<transport>[\w.-]+))?"
    r"/(?:smtp|lmtp|error|retry)\[\d+\]: "
    r"[0-9A-Za-z]{6,32}: to=<(?P<rcpt>[^>]*)>,.*?\bdsn=(?P<dsn>[245]\.\d{1,3}\.\d{1,3}), "
    r"status=(?P<status>sent|deferred|bounced) \((?P<text>.*)\)\s*$"
)
_SAID = re.compile(r"\bsaid: (?P<reply>.*?)(?: \(in reply to [^)]*\))?$")
# Syslog's month names are English whatever the locale (RFC 3164 4.1.2).
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_STATUSES: dict[str, Status] = {"sent": "sent", "deferred": "deferred", "bounced": "bounced"}


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt by a dedicated IP."""

    at: datetime  # aware
    ip: str  # the inventory's name of the dedicated IP
    isp_class: str  # a class of policies/throttling.yaml, or OTHER_CLASS
    recipient_domain: str
    status: Status
    dsn: str
    reply: str  # the receiver's reply, or Postfix's own words when there was none
    # The output instance's egress (`ip-<name>`, `pool-<name>`): the sending IP on this relay.
    egress: str = ""


def _timestamp(line: str, *, zone: tzinfo, now: datetime) -> datetime | None:
    match = _RFC3339.match(line)
    if match:
        try:
            return datetime.fromisoformat(match["ts"].replace("Z", "+00:00"))
        except ValueError:
            return None
    match = _TRADITIONAL.match(line)
    if match is None:
        return None
    local_now = now.astimezone(zone)
    for year in (local_now.year, local_now.year - 1):
        try:
            hh, mm, ss = (int(x) for x in match["time"].split(":"))
            at = datetime(year, _MONTHS[match["mon"]], int(match["day"]), hh, mm, ss, tzinfo=zone)
        except (KeyError, ValueError):
            return None
        if at <= local_now + timedelta(days=1):
            return at
    return None


def parse_line(line: str, *, zone: tzinfo, now: datetime, pools: bool = False) -> Delivery | None:
    """One log line as a Delivery, None for any other line (never raises).

    A pool's instance (`postfix-pool-<name>`) only with `pools` (its `ip` is then empty):
    warm-up is about dedicated IPs, back-off about every sending IP.
    """
    line = line.rstrip("\r\n")
    match = _LINE.search(line)
    if match is None or (match["kind"] == "pool" and not pools):
        return None
    at = _timestamp(line, zone=zone, now=now)
    if at is None:
        return None
    transport = match["transport"] or ""
    isp = transport[len(CLASS_PREFIX) :] if transport.startswith(CLASS_PREFIX) else OTHER_CLASS
    said = _SAID.search(match["text"])
    return Delivery(
        at=at,
        ip=match["ip"] if match["kind"] == "ip" else "",
        isp_class=isp or OTHER_CLASS,
        recipient_domain=match["rcpt"].rpartition("@")[2].lower(),
        status=_STATUSES[match["status"]],
        dsn=match["dsn"],
        reply=(said["reply"] if said else match["text"])[:500],
        egress=match["egress"],
    )


def read_maillog(lines: Iterable[str], *, zone: tzinfo, now: datetime) -> Iterator[Delivery]:
    for line in lines:
        delivery = parse_line(line, zone=zone, now=now)
        if delivery is not None:
            yield delivery
