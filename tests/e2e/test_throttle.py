"""Per sending IP × ISP class throttling, measured at the receiver (issue #12, first Show).

The example's lab policy (policies/throttling.yaml) gives gmail.com one delivery a
second, yahoo.com one every two seconds and outlook.com three connections at once;
a dedicated-IP customer (globex, 198.18.0.111) and a shared-pool customer (acme,
198.18.0.11) of relay1 each send PER_CLASS messages to each. bench/throttle/ runs the
same with 60 messages and records the figures.
"""

from __future__ import annotations

import pytest

from relayops.lab.throttle import measure
from support.deployed import Deployed

pytestmark = pytest.mark.lab

PER_CLASS = 20  # 19 intervals of 2 s for yahoo.com: about 40 s


def test_each_ip_and_class_keeps_its_configured_pace(deployed: Deployed) -> None:
    results, wall = measure(
        repo=deployed.target.repo,
        topology=deployed.lab.topology,
        ca_file=deployed.ca_file,
        per_class=PER_CLASS,
        timeout=180,
    )
    assert [f for m in results for f in m.failures(PER_CLASS)] == []
    by_key = {(m.customer, m.domain): m for m in results}
    # Each IP leaves from its own address with its own PTR as HELO.
    assert {(m.customer, m.source_ips, m.helos) for m in results} == {
        ("globex", ("198.18.0.111",), ("o1.relay.example.net",)),
        ("acme", ("198.18.0.11",), ("relay1.relay.example.net",)),
    }
    for customer in ("globex", "acme"):
        gmail, outlook = by_key[customer, "gmail.com"], by_key[customer, "outlook.com"]
        yahoo, reference = by_key[customer, "yahoo.com"], by_key[customer, "isp.lab"]
        assert (gmail.max_connections, yahoo.max_connections) == (1, 1)
        assert 0.9 <= gmail.interval_seconds <= 1.1
        assert 1.8 <= yahoo.interval_seconds <= 2.2
        assert outlook.max_connections == 3
        assert outlook.max_messages_per_connection <= 10
        # The unthrottled reference (Postfix's defaults) is over in a fraction of that.
        assert reference.span_seconds < gmail.span_seconds / 5
    # The two IPs are throttled apart: together they took no longer than one of them.
    assert wall < (PER_CLASS - 1) * 2 * 1.5
