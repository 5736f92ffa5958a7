"""The counter-store interface, the in-memory counters, and outage bookkeeping.

A store does one thing on the request path: `charge()` — atomically count one
recipient against (subscription, local day) if the count is below the day's
limit, unless the subscription's complaint flag is set, and claim the day's
warning / limit notice for exactly one caller. It answers at once when it can
(the SQLite store: memory is authoritative, the file is written behind) or
with a future (Redis: one network round trip per batch of requests; SQLite:
while its write-behind window is full, until the writer makes room).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from datetime import date
from typing import Protocol

from relayops.policyd.rules import Charge, ChargeStatus, Outcome

log = logging.getLogger("relayops.policyd.store")

COMPLAINT = "complaint"
UNAVAILABLE = Outcome(ChargeStatus.UNAVAILABLE)
_FLAGGED = Outcome(ChargeStatus.FLAGGED)


class StoreError(Exception):
    """The store cannot be opened at all (bad path, another daemon owns it)."""


class Store(Protocol):
    """What the server needs from a counter store."""

    description: str

    async def start(self) -> None:
        """Open, load what must be loaded; may raise StoreError."""

    def charge(self, charge: Charge) -> Outcome | asyncio.Future[Outcome]:
        """Count one recipient if below the limit (see module doc). Never raises."""

    async def close(self) -> None:
        """Write everything still pending and release the store."""

    async def claim(self, customer: str, day: date, kind: str) -> bool:
        """Claim a notice once per (customer, local day, kind) across all daemons sharing
        the store: True for the one caller that gets it; False if taken or unreachable."""

    async def claimed(self, customer: str, day: date, kind: str) -> bool:
        """Whether that notice was claimed (False when the store cannot say)."""

    async def swap_statuses(self, statuses: Mapping[str, str]) -> dict[str, str | None]:
        """Store each customer's account status; return the one stored before (None if
        none). Atomic per customer across daemons sharing the store, so exactly one
        daemon sees a given change. Raises StoreError when the store cannot answer."""

    async def take_outbox(self, limit: int) -> list[str]:
        """Remove and return up to `limit` queued notice requests (JSON, outbox.py);
        each is taken by one daemon only. [] when the store cannot answer."""

    @property
    def outage(self) -> bool:
        """True while the store is failing (for the metrics gauge)."""


class OutageLog:
    """Logs a store outage once when it starts and once when it ends, not per request."""

    def __init__(self, store: str) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.since: float | None = None
        self.failed_calls = 0

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, why: str) -> None:
        with self._lock:
            self.failed_calls += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.error("event=store_outage store=%s error=%r", self._store, why)

    def recovered(self) -> None:
        with self._lock:
            if self.since is None:
                return
            duration, calls = time.monotonic() - self.since, self.failed_calls
            self.since, self.failed_calls = None, 0
        log.warning(
            "event=store_recovered store=%s outage_seconds=%.1f failed_calls=%d",
            self._store,
            duration,
            calls,
        )


DayKey = tuple[str, date]  # (customer id, local day)
ClassKey = tuple[str, date, str]  # (customer id, local day, ISP class)


class MemoryCounters:
    """Counters, notice claims and complaint flags in process memory.

    The reference semantics of `charge`, used directly by the SQLite store and
    by the decision unit tests. Single-threaded use on the event loop; the
    `dirty_*` maps record what changed since the owner last took them.
    """

    def __init__(self) -> None:
        self.counts: dict[DayKey, int] = {}
        self.claims: set[tuple[str, date, str]] = set()
        self.flags: dict[str, str] = {}  # customer id -> reason (complaint suspension)
        self.dirty_counts: dict[DayKey, int] = {}
        self.dirty_claims: set[tuple[str, date, str]] = set()
        # Warm-up counts per ISP class (only for charges that carry a class).
        self.class_counts: dict[ClassKey, int] = {}
        self.dirty_class_counts: dict[ClassKey, int] = {}

    def claimed(self, cid: str, day: date, kind: str) -> bool:
        return (cid, day, kind) in self.claims

    def claim(self, cid: str, day: date, kind: str) -> bool:
        """Claim a notice (see Store.claim); the claim is written with the counters."""
        return self._claim(cid, day, kind)

    def _claim(self, cid: str, day: date, kind: str) -> bool:
        key = (cid, day, kind)
        if key in self.claims:
            return False
        self.claims.add(key)
        self.dirty_claims.add(key)
        return True

    def charge_now(self, charge: Charge) -> Outcome:
        cid = charge.customer.id
        if cid in self.flags:
            return _FLAGGED
        key = (cid, charge.day)
        count = self.counts.get(key, 0)
        if count < charge.limit:
            if charge.isp_class is not None:
                ckey = (cid, charge.day, charge.isp_class)
                in_class = self.class_counts.get(ckey, 0)
                if in_class >= charge.class_limit:
                    return Outcome(ChargeStatus.OVER_CLASS_LIMIT, in_class)
                self.class_counts[ckey] = self.dirty_class_counts[ckey] = in_class + 1
            count += 1
            self.counts[key] = self.dirty_counts[key] = count
            status = ChargeStatus.ACCEPTED
        else:
            status = ChargeStatus.OVER_LIMIT
        warn = count >= charge.warn_at and self._claim(cid, charge.day, "warning")
        limit = count >= charge.limit and self._claim(cid, charge.day, "limit")
        return Outcome(status, count, warn, limit)

    def forget_before(self, day: date) -> None:
        """Drop counters and claims of days before `day` (they can no longer change)."""
        self.counts = {k: v for k, v in self.counts.items() if k[1] >= day}
        self.claims = {k for k in self.claims if k[1] >= day}
        self.class_counts = {k: v for k, v in self.class_counts.items() if k[1] >= day}
