"""Quota credit: recipients a daemon may accept without asking Redis, reserved there first.

With one Redis round trip per batch, a fleet's daemons pay two cross-process wake-ups
for every few recipients (bench/policyd/RESULTS.md, "hotpath2"). Away from a customer's
warning and limit the answer is certain, so the charge script may *grant* a daemon a small run of
recipients at once: it adds them all to the day's count (so no other daemon can hand
them out) and to an outstanding-credit counter. The daemon answers the next ones from
that run locally, and *settles* each run with the store: when it is used up, when it
is older than the credit window, or when the daemon stops, returning what it did not
use. Settlements ride on the next charge call (or a call of their own when idle).

Why the quota stays exact:

- A run never crosses a notice threshold: it ends at the latest one below the warning
  or one below the limit, so the recipient that reaches each is charged alone and
  claims its notice, counted against what was accepted (the count less the credit
  still outstanding).
- A charge that finds the day at its limit while credit is outstanding (another
  daemon may still return some) is asked again a little later rather than refused;
  it is refused once nothing is outstanding, or after `max_wait`.

What it costs, stated in docs/policyd.md: the count in Redis runs ahead of what was
accepted by the unused part of live runs (returned within the window); a complaint
flag or quota change reaches recipients covered by a run within the window; a daemon
killed with SIGKILL strands its unused runs (counted but never sent: the customer may
send fewer, never more), and its outstanding counter lapses by itself.

Pure bookkeeping here; store_redis.py does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

CreditKey = tuple[str, date, int, int]  # (customer id, local day, limit, warn_at)


@dataclass(frozen=True, slots=True)
class Settlement:
    """One run told back to the store: `returned` unused recipients of a run of `size`."""

    customer: str
    day: date
    returned: int
    size: int


@dataclass(slots=True)
class _Run:
    left: int
    size: int
    count: int  # the day's count in the store when granted (for answers' `count`)
    expires: float


@dataclass
class Credits:
    """Live runs per (customer, day, limit, warn_at), and over-limit days, in one daemon.

    `window` is how long a run may be used, `refusal_window` how long a day found
    at its limit (nothing outstanding) is refused without asking again.
    """

    window: float
    refusal_window: float
    _runs: dict[CreditKey, _Run] = field(default_factory=dict)
    _full: dict[tuple[str, date, int], float] = field(default_factory=dict)
    _due: list[Settlement] = field(default_factory=list)

    def take(self, key: CreditKey, now: float) -> int | None:
        """Use one recipient of the key's run: the count to answer with, or None (ask)."""
        run = self._runs.get(key)
        if run is None:
            return None
        if now >= run.expires:
            self._settle(key, run)
            return None
        run.left -= 1
        count = run.count - run.left
        if run.left == 0:
            self._settle(key, run)
        return count

    def grant(self, key: CreditKey, size: int, count: int, now: float) -> None:
        """The store granted `size` recipients beyond the one charged (count includes all)."""
        old = self._runs.pop(key, None)
        if old is not None:  # granted again while the last run was live: settle that one too
            self._due.append(Settlement(key[0], key[1], old.left, old.size))
        if size > 0:
            self._runs[key] = _Run(size, size, count, now + self.window)

    def refund(self, customer: str, day: date, extra: int) -> None:
        """Give back a run the store granted but the daemon never got to use."""
        self._due.append(Settlement(customer, day, extra, extra))

    def full(self, key: CreditKey, now: float) -> bool:
        """Whether the day was found at its limit within the refusal window."""
        until = self._full.get(key[:3])
        if until is None:
            return False
        if now < until:
            return True
        del self._full[key[:3]]
        return False

    def mark_full(self, key: CreditKey, now: float) -> None:
        if len(self._full) > 100_000:  # a day's worth of customers, many times over
            self._full.clear()
        self._full[key[:3]] = now + self.refusal_window

    def expire(self, now: float) -> None:
        """Settle every run older than the window."""
        for key in [k for k, run in self._runs.items() if now >= run.expires]:
            self._settle(key, self._runs[key])

    def drain(self) -> list[Settlement]:
        """Settle every live run (the daemon stops); what is due, taken."""
        for key in list(self._runs):
            self._settle(key, self._runs[key])
        return self.take_due()

    def take_due(self) -> list[Settlement]:
        due, self._due = self._due, []
        return due

    @property
    def has_due(self) -> bool:
        return bool(self._due)

    @property
    def live(self) -> int:
        """Runs not yet settled (the sweeper runs while there are any, or settlements due)."""
        return len(self._runs) + len(self._due)

    def _settle(self, key: CreditKey, run: _Run) -> None:
        del self._runs[key]
        self._due.append(Settlement(key[0], key[1], run.left, run.size))
