"""The Redis ledger against a real redis-server: at-most-once, tallies, pruning."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from relayops.policyd.ledger import Change, Suppression, Tally
from relayops.policyd.ledger_redis import SUPPRESS_KEY, SUPPRESS_VERSION_KEY, RedisLedger
from support.policyd import RedisServer

pytestmark = pytest.mark.real


def test_apply_once_tally_and_prune(redis_server: RedisServer) -> None:
    ledger = RedisLedger(redis_server.url)
    today = datetime.now(UTC).date()
    now = time.time()
    lapsed = Suppression("acme", "old@x.example", now - 100, now - 1, "hard bounce")
    live = Suppression("acme", "gone@x.example", now, now + 3600, "hard bounce")
    first = Change("a" * 64, "acme", today, {"hard": 2, "soft": 1}, (lapsed, live), "why")
    assert ledger.apply(first) is True
    assert ledger.apply(first) is False  # the same report again
    assert ledger.tally("acme", days=2, today=today) == Tally(hard=2, soft=1)
    assert ledger.flags() == {"acme": "why"}
    r = redis_server.client()
    assert sorted(r.hkeys(SUPPRESS_KEY)) == ["acme gone@x.example"]  # lapsed one pruned
    assert r.get(SUPPRESS_VERSION_KEY) == "2"  # the apply, then the prune
    assert [s.address for s in ledger.suppressions("acme", now=now)] == ["gone@x.example"]
    assert ledger.unsuppress("acme", "GONE@x.example", who="op", why="fixed", now=now)
    assert ledger.suppressions(None, now=now) == []
    assert [(e.action, e.who) for e in ledger.audit("acme")] == [("unsuppressed", "op")]
    assert ledger.release("acme", who="op", why="ok", now=now) is True
    assert ledger.release("acme", who="op", why="ok", now=now) is False
    ledger.close()
