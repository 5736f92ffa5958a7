"""What the receiver saw, read from its Postfix log and Received: headers (pure parsers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.lab import deliveries
from relayops.lab.throttle import Expected, Measured, within

# Lines as the lab's destination host logs them (two relays' sessions interleaved).
LOG = """\
Dec 01 10:15:55 isp postfix/smtpd[256]: connect from o1.relay.example.net[198.18.0.111]
Dec 01 10:15:55 isp postfix/smtpd[258]: connect from o1.relay.example.net[198.18.0.111]
Dec 01 10:15:55 isp postfix/smtpd[274]: connect from relay1.relay.example.net[198.18.0.11]
Dec 01 10:15:56 isp postfix/smtpd[256]: BCD9B16E9D1: client=o1.relay.example.net[198.18.0.111]
Dec 01 10:15:56 isp postfix/smtpd[258]: BCD6C16E9C4: client=o1.relay.example.net[198.18.0.111]
Dec 01 10:15:56 isp postfix/smtpd[274]: C9DD316E9D1: client=relay1.relay.example.net[198.18.0.11]
Dec 01 10:15:56 isp postfix/cleanup[270]: BCD9B16E9D1: message-id=<1@globex.example>
Dec 01 10:15:56 isp postfix/cleanup[271]: C9DD316E9D1: message-id=<2@acme.example>
Dec 01 10:15:56 isp postfix/qmgr[169]: BCD9B16E9D1: from=<a@globex.example>, size=1852, \
nrcpt=1 (queue active)
Dec 01 10:15:56 isp postfix/qmgr[169]: C9DD316E9D1: from=<a@acme.example>, size=1852, \
nrcpt=1 (queue active)
Dec 01 10:15:56 isp postfix/qmgr[169]: BCD6C16E9C4: from=<a@globex.example>, size=1852, \
nrcpt=1 (queue active)
Dec 01 10:15:56 isp postfix/virtual[265]: BCD9B16E9D1: to=<t-6@outlook.com>, relay=virtual, \
delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec 01 10:15:56 isp postfix/virtual[263]: BCD6C16E9C4: to=<t-4@Outlook.com>, relay=virtual, \
delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec 01 10:15:56 isp postfix/virtual[266]: C9DD316E9D1: to=<t-2@outlook.com>, relay=virtual, \
delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec 01 10:15:56 isp postfix/cleanup[272]: BCD6C16E9C4: message-id=<3@globex.example>
Dec 01 10:15:57 isp postfix/smtpd[256]: C0FFEE16E9D: client=o1.relay.example.net[198.18.0.111]
Dec 01 10:15:57 isp postfix/cleanup[270]: C0FFEE16E9D: message-id=<4@globex.example>
Dec 01 10:15:57 isp postfix/qmgr[169]: C0FFEE16E9D: from=<a@globex.example>, size=1852, \
nrcpt=1 (queue active)
Dec 01 10:15:57 isp postfix/virtual[265]: C0FFEE16E9D: to=<t-7@outlook.com>, relay=virtual, \
delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec 01 10:15:57 isp postfix/smtpd[256]: disconnect from o1.relay.example.net[198.18.0.111] \
ehlo=2 starttls=1 mail=2 rcpt=2 data=2 rset=1 commands=10
Dec 01 10:15:57 isp postfix/smtpd[256]: connect from o1.relay.example.net[198.18.0.111]
Dec 01 10:15:58 isp postfix/smtpd[256]: lost connection after CONNECT from \
o1.relay.example.net[198.18.0.111]
Dec 01 10:15:58 isp postfix/smtpd[256]: disconnect from o1.relay.example.net[198.18.0.111] \
commands=0/0
Dec 01 10:15:58 isp postfix/smtpd[258]: disconnect from o1.relay.example.net[198.18.0.111] \
ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7
"""


def test_sessions_carry_their_queue_ids_and_recipient_domains() -> None:
    conns = deliveries.connections(LOG)
    assert [(c.ip, c.queue_ids, sorted(c.domains), c.closed is not None) for c in conns] == [
        ("198.18.0.111", ["BCD9B16E9D1", "C0FFEE16E9D"], ["outlook.com"], True),
        ("198.18.0.111", ["BCD6C16E9C4"], ["outlook.com"], True),
        ("198.18.0.11", ["C9DD316E9D1"], ["outlook.com"], False),
        ("198.18.0.111", [], [], True),
    ]


def test_simultaneous_sessions_are_counted_per_ip_and_domain() -> None:
    conns = deliveries.connections(LOG)
    assert (
        deliveries.max_simultaneous(deliveries.carrying(conns, "198.18.0.111", "outlook.com")) == 2
    )
    assert (
        deliveries.max_simultaneous(deliveries.carrying(conns, "198.18.0.11", "outlook.com")) == 1
    )
    assert deliveries.carrying(conns, "198.18.0.111", "gmail.com") == []
    assert deliveries.max_simultaneous([]) == 0
    # Every session of the log: three open at once before the first disconnect.
    assert deliveries.max_simultaneous(conns) == 3


def test_deliveries_at_once_are_transactions_from_client_to_header_read() -> None:
    conns = deliveries.connections(LOG)
    assert [c.transactions for c in conns][:3] == [[(3, 6), (15, 16)], [(4, 14)], [(5, 7)]]
    globex = deliveries.carrying(conns, "198.18.0.111", "outlook.com")
    # BCD9B16E9D1 and BCD6C16E9C4 were in DATA together; C0FFEE16E9D came after both.
    assert deliveries.max_simultaneous_deliveries(globex) == 2
    assert deliveries.max_simultaneous_deliveries(conns[2:3]) == 1
    # qmgr's `from=` lines (which may lag behind) end nothing.
    assert (
        deliveries.max_simultaneous_deliveries(
            deliveries.connections(
                "\n".join(line for line in LOG.splitlines() if "cleanup" not in line)
            )
        )
        == 0
    )


def test_sender_from_the_receivers_received_header() -> None:
    header = (
        "from o1.relay.example.net (o1.relay.example.net [198.18.0.111])\n"
        "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\tby isp.lab"
    )
    assert deliveries.sender_of(header) == deliveries.Sender(
        "o1.relay.example.net", "o1.relay.example.net", "198.18.0.111"
    )
    assert deliveries.sender_of("by isp.lab (Postfix) with ESMTP") is None


def test_pace_is_the_mean_interval_between_first_and_last() -> None:
    assert deliveries.pace([3.0, 1.0, 2.0, 5.0]) == deliveries.Pace(4, 4.0, 4.0 / 3)
    with pytest.raises(ValueError, match="two deliveries or more, got 1"):
        deliveries.pace([1.0])


@given(st.text(max_size=400))
def test_any_log_text_parses_without_error(text: str) -> None:
    conns = deliveries.connections(text)
    assert deliveries.max_simultaneous(conns) <= len(conns)


def _measured(*, interval: float, connections: int, per_connection: int = 1) -> Measured:
    return Measured(
        customer="globex",
        ip="198.18.0.111",
        ptr="o1.relay.example.net",
        domain="gmail.com",
        expected=Expected("gmail", 3, 1, 10),
        delivered=60,
        span_seconds=interval * 59,
        interval_seconds=interval,
        max_connections=connections,
        max_sessions=connections + 1,
        max_messages_per_connection=per_connection,
        source_ips=("198.18.0.111",),
        helos=("o1.relay.example.net",),
    )


def test_ten_percent_either_side_of_the_configuration() -> None:
    assert within(1.1, 1, 0.1) and within(0.9, 1, 0.1)
    assert not within(1.11, 1, 0.1) and not within(0.89, 1, 0.1)
    assert _measured(interval=1.1, connections=3, per_connection=10).failures(60) == []
    assert _measured(interval=1.11, connections=2, per_connection=11).failures(60) == [
        "globex (198.18.0.111) -> gmail.com: one delivery every 1.11 s, configured 1 s",
        "globex (198.18.0.111) -> gmail.com: 2 connections delivering at once, configured 3",
        "globex (198.18.0.111) -> gmail.com: 11 messages on one connection, configured 10",
    ]
    assert _measured(interval=1.0, connections=3).failures(61) == [
        "globex (198.18.0.111) -> gmail.com: 60 of 61 messages delivered"
    ]
