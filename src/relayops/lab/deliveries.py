"""What the destination host saw of a relay's sending: connections, speed, HELO. Pure.

Its Postfix log ties each SMTP connection (`connect from` … `disconnect from`, one smtpd
process at a time) to the messages it carried (`QUEUEID: client=`) and their recipients
(`QUEUEID: to=<…>`), so the connections delivering at once (and the sessions open at
once) are counted per sending IP and recipient domain, in log order (the log's
timestamps are whole seconds; the order is exact). Delivery times come from the stored
messages (file times, sub-second), the sending IP and HELO from the Received: header
the destination host added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_LINE = re.compile(r"postfix/(?P<service>[\w/-]+)\[(?P<pid>\d+)\]: (?P<text>.*)$")
_CONNECT = re.compile(r"^connect from \S+\[(?P<ip>[\d.]+)\]$")
_DISCONNECT = re.compile(r"^disconnect from \S+\[(?P<ip>[\d.]+)\]")
_CLIENT = re.compile(r"^(?P<qid>[0-9A-Za-z]+): client=\S+\[(?P<ip>[\d.]+)\]")
_TO = re.compile(r"^(?P<qid>[0-9A-Za-z]+): to=<[^@>]*@(?P<domain>[^>]+)>")
# cleanup reads the message's header during DATA: a moment inside the transaction. qmgr's
# `from=` would mark its end, but qmgr lags behind a burst (it also hands the mail to the
# mailboxes), which made ended deliveries overlap the next ones: 4 at once for a limit of 3.
# The slow receiver (receivers.SLOW_PREFIX) waits at DATA, between `client=` and this line.
_HEADER_READ = re.compile(r"^(?P<qid>[0-9A-Za-z]+): message-id=")
# The receiving MTA's own Received: header, RFC 5321 4.4: from HELO (PTR [IP]).
_RECEIVED = re.compile(r"^from (?P<helo>\S+) \((?P<ptr>\S+) \[(?P<ip>[\d.]+)\]\)")


@dataclass
class Connection:
    """One SMTP session a relay opened to the destination host."""

    ip: str
    opened: int  # line number of `connect from`
    closed: int | None = None  # line number of `disconnect from`
    queue_ids: list[str] = field(default_factory=list)
    domains: set[str] = field(default_factory=set)
    # (first, last) line of each mail transaction: `client=` to cleanup's `message-id=`
    transactions: list[tuple[int, int]] = field(default_factory=list)


def connections(log: str) -> list[Connection]:
    """Every smtpd session in `log`, with the recipient domains of what it carried."""
    open_by_pid: dict[str, Connection] = {}
    by_qid: dict[str, Connection] = {}
    started: dict[str, int] = {}  # queue id -> its `client=` line, until qmgr has it
    found: list[Connection] = []
    for number, line in enumerate(log.splitlines()):
        match = _LINE.search(line)
        if match is None:
            continue
        service, pid, text = match["service"], match["pid"], match["text"]
        if service.endswith("smtpd"):
            if m := _CONNECT.match(text):
                conn = Connection(m["ip"], number)
                open_by_pid[pid] = conn
                found.append(conn)
            elif (m := _DISCONNECT.match(text)) and pid in open_by_pid:
                open_by_pid.pop(pid).closed = number
            elif (m := _CLIENT.match(text)) and pid in open_by_pid:
                open_by_pid[pid].queue_ids.append(m["qid"])
                by_qid[m["qid"]] = open_by_pid[pid]
                started[m["qid"]] = number
        elif (m := _TO.match(text)) and m["qid"] in by_qid:
            by_qid[m["qid"]].domains.add(m["domain"].lower())
        elif (
            service.endswith("cleanup") and (m := _HEADER_READ.match(text)) and m["qid"] in started
        ):
            by_qid[m["qid"]].transactions.append((started.pop(m["qid"]), number))
    return found


def _most_open(spans: Iterable[tuple[int, int | None]]) -> int:
    """The most spans open at one line; an end before a start on the same line."""
    events: list[tuple[int, int]] = []
    for start, end in spans:
        events.append((start, 1))
        if end is not None:
            events.append((end, -1))
    most = current = 0
    for _, step in sorted(events):
        current += step
        most = max(most, current)
    return most


def max_simultaneous(conns: Iterable[Connection]) -> int:
    """The most sessions open at one point of the log (an unclosed one stays open).

    More than the sender's parallel deliveries: a session closing is logged after the
    same sender's next one opened, and cached connections wait idle between messages.
    """
    return _most_open((c.opened, c.closed) for c in conns)


def max_simultaneous_deliveries(conns: Iterable[Connection]) -> int:
    """The most mail transactions in progress at once: the sender's parallel deliveries,
    which is what Postfix's destination concurrency limit bounds."""
    return _most_open(span for c in conns for span in c.transactions)


def carrying(conns: Iterable[Connection], ip: str, domain: str) -> list[Connection]:
    """The sessions from `ip` that carried mail for `domain`."""
    return [c for c in conns if c.ip == ip and domain.lower() in c.domains]


@dataclass(frozen=True)
class Sender:
    """Who delivered a stored message, from the destination's own Received: header."""

    helo: str
    ptr: str
    ip: str


def sender_of(received: str) -> Sender | None:
    """`from o1.x (o1.x [198.18.0.111]) by …` -> Sender; None for another shape."""
    match = _RECEIVED.match(" ".join(received.split()))
    return Sender(match["helo"], match["ptr"], match["ip"]) if match else None


@dataclass(frozen=True)
class Pace:
    count: int
    span_seconds: float  # first to last delivery
    interval_seconds: float  # mean time between consecutive deliveries


def pace(times: Sequence[float]) -> Pace:
    """The delivery pace of `times` (seconds, any order); needs at least two."""
    if len(times) < 2:
        raise ValueError(f"a pace needs two deliveries or more, got {len(times)}")
    ordered = sorted(times)
    span = ordered[-1] - ordered[0]
    return Pace(len(ordered), span, span / (len(ordered) - 1))
