"""The DATA-state stamp answers and the suppression snapshot's staleness rule."""

from __future__ import annotations

import time

from relayops.policyd.ledger import LedgerError, Suppression
from relayops.policyd.stamp import stamp_action
from relayops.policyd.suppress import Hit, Snapshot, Suppressions, reply
from relayops.policyd.trace import verify_trace
from support.policyd import request

KEY = b"k"


def test_the_trace_and_feedback_id_answers() -> None:
    data = request("DATA", queue_id="4XyZab12", policy_context="trace")
    action = stamp_action(data, "acme", key=KEY, now=1764583200)
    assert action is not None
    assert action == (
        "PREPEND X-Relayops-Trace: v=1; c=acme; l=acme-app; q=4XyZab12; t=1764583200; h="
        + action.rsplit("h=", 1)[1]
    )
    trace = verify_trace(action.split(": ", 1)[1], KEY)
    assert trace is not None and trace.verified
    feedback_id = request("DATA", policy_context="feedback-id")
    assert stamp_action(feedback_id, "acme", key=KEY, now=0) == (
        "PREPEND Feedback-ID: acme-app:acme:relayops"
    )
    assert stamp_action(data, "acme", key=None, now=0) is None  # no key: no stamp
    assert stamp_action(request("DATA", policy_context="other"), "acme", key=KEY, now=0) is None
    odd = request("DATA", login="a b", policy_context="trace")
    assert stamp_action(odd, "acme", key=KEY, now=0) is None  # unstampable login


class Source:
    description = "test"

    def __init__(self) -> None:
        self.snap: Snapshot = {}
        self.fail = False

    def load(self, known_version: str | None) -> tuple[str | None, Snapshot | None]:
        if self.fail:
            raise LedgerError("down")
        return None, dict(self.snap)


def test_a_stale_snapshot_is_not_trusted() -> None:
    source = Source()
    entry = Suppression("acme", "gone@x.example", 1796083200, time.time() + 60)
    source.snap[("acme", "gone@x.example")] = entry
    s = Suppressions(source, max_stale=0.2)
    assert s.check("acme", "gone@x.example") == Hit(None, stale=True)  # never loaded
    s.refresh()
    assert s.check("acme", "Gone@X.example") == Hit(entry)
    assert s.check("acme", "other@x.example") is None
    assert s.check("globex", "gone@x.example") is None
    source.fail = True
    s.refresh()
    assert s.check("acme", "gone@x.example") == Hit(entry)  # still fresh enough
    time.sleep(0.25)
    s.refresh()
    assert s.check("acme", "other@x.example") == Hit(None, stale=True)
    assert reply(entry, "Gone@X.example") == (
        "550 5.1.1 <Gone@X.example> suppressed since 2026-12-01 after a hard bounce"
    )


def test_quiet_only_when_fresh_and_empty() -> None:
    """The request path skips the recipient only when no answer can come of it."""
    source = Source()
    s = Suppressions(source, max_stale=0.2)
    assert not s.quiet()  # never loaded: check() says stale
    s.refresh()
    assert s.quiet() and s.check("acme", "any@x.example") is None
    source.snap[("acme", "gone@x.example")] = Suppression(
        "acme", "gone@x.example", 0, time.time() + 60
    )
    s.refresh()
    assert not s.quiet()  # something suppressed: ask check()
    source.snap.clear()
    s.refresh()
    source.fail = True
    time.sleep(0.25)
    s.refresh()
    assert not s.quiet() and s.check("acme", "any@x.example") == Hit(None, stale=True)
