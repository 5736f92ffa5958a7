"""The feedback ledger: what bounces and complaints did, kept beside the daemon's counters.

Written by `relayops feedback ingest|maillog|release|unsuppress` (on a relay, so it
lives here, in the policy daemon's package) and read by the daemon (suppressions,
complaint flags) and by `relayops feedback status`. Two implementations with the same
semantics: `ledger_sqlite.SqliteLedger` (the same file as the one-host counter store)
and `ledger_redis.RedisLedger` (the fleet's Redis). Both raise `LedgerError` when the
store cannot be reached; callers then tempfail (ingest exits 75 so Postfix retries),
they never act on half a record.

Per-customer tallies are kept per UTC day; the window of a rate is a number of whole
UTC days ending today (docs/feedback.md says why that is close enough to the daemon's
local-day counters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

# The daemon's default --store (policyd/cli.py, compile/policy.py SQLITE_STORE).
DEFAULT_STORE = "sqlite:/var/lib/relayops/policyd.sqlite"

# Tally kinds, one word each (store columns / Redis hash fields / metric labels).
COMPLAINT = "complaint"
HARD = "hard"
SOFT = "soft"
BLOCK = "block"
TALLY_KINDS = (COMPLAINT, HARD, SOFT, BLOCK)


class LedgerError(Exception):
    """The ledger's store cannot be read or written now (retry later; nothing was applied)."""


@dataclass(frozen=True)
class Tally:
    """A customer's figures over a window: accepted recipients and what came back."""

    accepted: int = 0
    complaint: int = 0
    hard: int = 0
    soft: int = 0
    block: int = 0

    def plus(self, counts: dict[str, int]) -> Tally:
        return Tally(
            self.accepted,
            self.complaint + counts.get(COMPLAINT, 0),
            self.hard + counts.get(HARD, 0),
            self.soft + counts.get(SOFT, 0),
            self.block + counts.get(BLOCK, 0),
        )


@dataclass(frozen=True)
class Suppression:
    """A recipient a customer may not send to until `expires` (unix time) after a hard bounce."""

    customer: str
    address: str  # lower-case
    since: float
    expires: float
    reason: str = ""


@dataclass(frozen=True)
class AuditEntry:
    """One change a person or the ingester made (the audit trail `status` prints)."""

    at: float
    customer: str
    action: str  # disabled | released | suppressed | unsuppressed | suspension-proposed | …
    who: str
    why: str


@dataclass(frozen=True)
class Change:
    """Everything one report does to the ledger, applied at once and at most once.

    `digest` (sha256 of the raw message) makes a retried delivery of the same
    report a no-op.
    """

    digest: str
    customer: str | None
    day: date
    counts: dict[str, int] = field(default_factory=dict)
    suppress: tuple[Suppression, ...] = ()
    disable: str | None = None  # the complaint flag's reason, when the customer is disabled
    audit: tuple[AuditEntry, ...] = ()


class Ledger(Protocol):
    def apply(self, change: Change) -> bool:
        """Apply a report's change; False when this digest was applied before."""

    def tally(self, customer: str, *, days: int, today: date) -> Tally:
        """Figures of the last `days` UTC days up to `today` (accepted from the counters)."""

    def customers(self) -> list[str]:
        """Customers the ledger holds anything about, sorted."""

    def suppressions(self, customer: str | None, *, now: float) -> list[Suppression]:
        """Suppressions in force at `now`, sorted by customer then address."""

    def unsuppress(self, customer: str, address: str, *, who: str, why: str, now: float) -> bool:
        """Lift one suppression; False when there was none."""

    def flags(self) -> dict[str, str]:
        """Customers whose sending is disabled pending review, with the reason."""

    def release(self, customer: str, *, who: str, why: str, now: float) -> bool:
        """Clear the complaint flag (recorded in the audit trail); False when it was not set."""

    def audit(self, customer: str | None, *, limit: int = 50) -> list[AuditEntry]:
        """The newest entries first."""

    def close(self) -> None: ...


def window_days(today: date, days: int) -> list[date]:
    """The `days` UTC dates ending with `today`, oldest first."""
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def utc_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


# The daemon's --store forms (redis_url.py parses the Redis ones).
REDIS_SCHEMES = ("redis://", "rediss://", "redis+sentinel://", "rediss+sentinel://")


def open_ledger(spec: str, *, password: str | None = None) -> Ledger:
    """The ledger of a daemon's ``--store`` spec: ``sqlite:PATH`` or a Redis URL, with the
    password of --store-password-file when the URL names an ACL user."""
    if spec.startswith("sqlite:"):
        from pathlib import Path

        from relayops.policyd.ledger_sqlite import SqliteLedger

        return SqliteLedger(Path(spec[len("sqlite:") :]))
    if spec.startswith(REDIS_SCHEMES):
        from relayops.policyd.ledger_redis import RedisLedger

        try:
            return RedisLedger(spec, password=password)
        except ValueError as exc:
            raise LedgerError(str(exc)) from None
    shown = spec.split("@")[-1]  # never a password
    raise LedgerError(f"expected sqlite:PATH or a Redis URL (redis[s][+sentinel]://…): {shown!r}")
