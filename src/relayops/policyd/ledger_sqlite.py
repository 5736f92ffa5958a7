"""The feedback ledger in the one-host SQLite store (the daemon's file, new tables).

The daemon reads `suppressions` (suppress.py polls it) and the existing `flags`
table; tools write here through short transactions with the daemon's busy
timeout, so a write never fights the daemon's writer for long.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import date
from pathlib import Path

from relayops.policyd.ledger import (
    AuditEntry,
    Change,
    LedgerError,
    Suppression,
    Tally,
    window_days,
)
from relayops.policyd.store import COMPLAINT
from relayops.policyd.store_sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_seen (
    digest TEXT PRIMARY KEY,      -- sha256 of a report already applied
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback_tally (
    customer TEXT NOT NULL,
    day TEXT NOT NULL,            -- UTC date, ISO 8601
    kind TEXT NOT NULL,           -- complaint | hard | soft | block
    n INTEGER NOT NULL,
    PRIMARY KEY (customer, day, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suppressions (
    customer TEXT NOT NULL,
    address TEXT NOT NULL,        -- lower-case
    since REAL NOT NULL,          -- unix time of the hard bounce
    expires REAL NOT NULL,        -- unix time the suppression lapses
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (customer, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback_state (
    key TEXT PRIMARY KEY,         -- 'suppress_version': bumped on every suppression change
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback_audit (
    at REAL NOT NULL,
    customer TEXT NOT NULL,
    action TEXT NOT NULL,
    who TEXT NOT NULL,
    why TEXT NOT NULL
);
"""


def open_db(path: Path) -> sqlite3.Connection:
    """The daemon's settings plus the ledger's tables; LedgerError if it cannot be opened."""
    try:
        conn = connect(path, busy_timeout=5.0)
        conn.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise LedgerError(f"sqlite:{path}: {exc}") from None
    return conn


class SqliteLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = open_db(path)

    def close(self) -> None:
        self._conn.close()

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return list(self._conn.execute(sql, args))
        except sqlite3.Error as exc:
            raise LedgerError(f"sqlite:{self.path}: {exc}") from None

    def apply(self, change: Change) -> bool:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                seen = conn.execute(
                    "INSERT OR IGNORE INTO feedback_seen (digest, at) VALUES (?, ?)",
                    (change.digest, time.time()),
                ).rowcount
                if not seen:
                    conn.execute("ROLLBACK")
                    return False
                day = change.day.isoformat()
                for kind, n in change.counts.items():
                    if change.customer and n:
                        conn.execute(
                            "INSERT INTO feedback_tally (customer, day, kind, n) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT (customer, day, kind) "
                            "DO UPDATE SET n = n + excluded.n",
                            (change.customer, day, kind, n),
                        )
                expired = conn.execute(
                    "DELETE FROM suppressions WHERE expires <= ?", (time.time(),)
                ).rowcount
                if change.suppress or expired:
                    self._bump()
                for s in change.suppress:
                    conn.execute(
                        "INSERT INTO suppressions (customer, address, since, expires, reason) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer, address) DO UPDATE SET "
                        "since = excluded.since, expires = excluded.expires, "
                        "reason = excluded.reason",
                        (s.customer, s.address, s.since, s.expires, s.reason),
                    )
                if change.disable is not None and change.customer:
                    conn.execute(
                        "INSERT INTO flags (customer, flag, reason, expires_at) "
                        "VALUES (?, ?, ?, NULL) ON CONFLICT (customer, flag) DO UPDATE SET "
                        "reason = excluded.reason, expires_at = NULL",
                        (change.customer, COMPLAINT, change.disable),
                    )
                for e in change.audit:
                    self._audit(e)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise LedgerError(f"sqlite:{self.path}: {exc}") from None
        return True

    def _bump(self) -> None:
        self._conn.execute(
            "INSERT INTO feedback_state (key, value) VALUES ('suppress_version', 1) "
            "ON CONFLICT (key) DO UPDATE SET value = value + 1"
        )

    def suppress_version(self) -> str:
        """Changes whenever a suppression is added or lifted (the daemon's cheap poll)."""
        rows = self._run("SELECT value FROM feedback_state WHERE key = 'suppress_version'")
        return str(rows[0][0]) if rows else "0"

    def _audit(self, e: AuditEntry) -> None:
        self._conn.execute(
            "INSERT INTO feedback_audit (at, customer, action, who, why) VALUES (?, ?, ?, ?, ?)",
            (e.at, e.customer, e.action, e.who, e.why),
        )

    def tally(self, customer: str, *, days: int, today: date) -> Tally:
        dates = window_days(today, days)
        first = dates[0].isoformat()
        # The daemon's counters are per local day; a day either side of UTC is close enough
        # for a rate over whole days (docs/feedback.md).
        accepted = self._run(
            "SELECT coalesce(sum(count), 0) FROM counters WHERE customer = ? AND day >= ?",
            (customer, first),
        )[0][0]
        counts = {
            str(kind): int(str(n))
            for kind, n in self._run(
                "SELECT kind, sum(n) FROM feedback_tally WHERE customer = ? AND day >= ? "
                "GROUP BY kind",
                (customer, first),
            )
        }
        return Tally(accepted=int(str(accepted))).plus(counts)

    def customers(self) -> list[str]:
        rows = self._run(
            "SELECT customer FROM feedback_tally UNION SELECT customer FROM suppressions "
            "UNION SELECT customer FROM flags UNION SELECT customer FROM counters"
        )
        return sorted(str(r[0]) for r in rows)

    def suppressions(self, customer: str | None, *, now: float) -> list[Suppression]:
        rows = self._run(
            "SELECT customer, address, since, expires, reason FROM suppressions "
            "WHERE expires > ? AND (? IS NULL OR customer = ?) ORDER BY customer, address",
            (now, customer, customer),
        )
        return [
            Suppression(str(c), str(a), float(str(s)), float(str(e)), str(r))
            for c, a, s, e, r in rows
        ]

    def unsuppress(self, customer: str, address: str, *, who: str, why: str, now: float) -> bool:
        with self._transaction():
            gone = self._conn.execute(
                "DELETE FROM suppressions WHERE customer = ? AND address = ?",
                (customer, address.lower()),
            ).rowcount
            if gone:
                self._bump()
                self._audit(AuditEntry(now, customer, "unsuppressed", who, f"{address}: {why}"))
        return bool(gone)

    def flags(self) -> dict[str, str]:
        rows = self._run(
            "SELECT customer, reason FROM flags WHERE flag = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (COMPLAINT, time.time()),
        )
        return {str(c): str(r) for c, r in rows}

    def release(self, customer: str, *, who: str, why: str, now: float) -> bool:
        with self._transaction():
            gone = self._conn.execute(
                "DELETE FROM flags WHERE customer = ? AND flag = ?", (customer, COMPLAINT)
            ).rowcount
            if gone:
                self._audit(AuditEntry(now, customer, "released", who, why))
        return bool(gone)

    def audit(self, customer: str | None, *, limit: int = 50) -> list[AuditEntry]:
        rows = self._run(
            "SELECT at, customer, action, who, why FROM feedback_audit "
            "WHERE ? IS NULL OR customer = ? ORDER BY at DESC, rowid DESC LIMIT ?",
            (customer, customer, limit),
        )
        return [AuditEntry(float(str(a)), str(c), str(k), str(w), str(y)) for a, c, k, w, y in rows]

    def _transaction(self) -> _Tx:
        return _Tx(self)


class _Tx:
    """BEGIN IMMEDIATE … COMMIT, sqlite3 errors as LedgerError."""

    def __init__(self, ledger: SqliteLedger) -> None:
        self.ledger = ledger

    def __enter__(self) -> None:
        try:
            self.ledger._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise LedgerError(f"sqlite:{self.ledger.path}: {exc}") from None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self.ledger._conn
        try:
            conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
        except sqlite3.Error as err:
            raise LedgerError(f"sqlite:{self.ledger.path}: {err}") from None
        if isinstance(exc, sqlite3.Error):
            raise LedgerError(f"sqlite:{self.ledger.path}: {exc}") from None
