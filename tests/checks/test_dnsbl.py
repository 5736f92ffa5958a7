"""DNSBL answers: listed, refused (error codes) and clean."""

from __future__ import annotations

import pytest

from relayops.checks.dnsbl import classify, judge, query_name
from relayops.checks.result import Status
from relayops.checks.target import DnsblZone

ZEN = DnsblZone("zen.spamhaus.org", "ip")
DBL = DnsblZone("dbl.spamhaus.org", "domain")


def test_query_names() -> None:
    assert query_name("198.51.100.7", ZEN) == "7.100.51.198.zen.spamhaus.org"
    assert query_name("acme.test", DBL) == "acme.test.dbl.spamhaus.org"
    with pytest.raises(ValueError, match="not IPv4"):
        query_name("2001:db8::1", ZEN)


@pytest.mark.parametrize(
    ("answers", "verdict"),
    [
        ([], "clean"),
        (["127.0.0.2"], "listed"),
        (["127.0.0.4", "127.0.0.10"], "listed"),
        (["127.0.1.2"], "listed"),
        (["127.255.255.254"], "refused"),
        (["127.255.255.252"], "refused"),
        (["127.255.255.255"], "refused"),
        (["127.0.1.255"], "refused"),
        (["127.0.0.1"], "refused"),
        (["127.0.0.2", "127.255.255.254"], "refused"),
        (["192.0.2.1"], "refused"),  # outside 127/8: a wildcarding resolver, not the zone
    ],
)
def test_classify(answers: list[str], verdict: str) -> None:
    assert classify(answers, ZEN) == verdict


def test_zone_specific_refusal_code() -> None:
    zone = DnsblZone("bl.example.test", "ip", refusal_codes=("127.0.0.9",))
    assert classify(["127.0.0.9"], zone) == "refused"


def test_judge_messages() -> None:
    listed = judge("198.51.100.7", "host r1", ZEN, ["127.0.0.2"], "https://check.example/x")
    assert listed.status is Status.ERROR
    assert listed.message.startswith(
        "198.51.100.7 is listed in zen.spamhaus.org (answer 127.0.0.2) (https://check.example/x)"
    )
    refused = judge("198.51.100.7", "host r1", ZEN, ["127.255.255.254"], None)
    assert refused.status is Status.WARNING
    assert "refused the query" in refused.message
    assert judge("198.51.100.7", "host r1", ZEN, [], None).status is Status.OK
