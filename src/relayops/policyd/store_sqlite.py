"""SQLite counter store: memory is authoritative, the file is written behind.

One daemon owns one SQLite file (an flock on ``PATH.lock`` enforces it; a
fleet shares Redis instead). Requests are counted in memory on the event loop
and never wait for the disk. A writer thread commits the changed counters
(absolute values, so a retry is idempotent) every `flush_interval` seconds, or
sooner once a quarter of `max_unflushed` recipients are pending, with WAL and
``synchronous=NORMAL``: a commit is in the OS's hands at once (safe from a
daemon crash) and the writer checkpoints, which fsyncs, every `sync_interval`
seconds. ``synchronous=FULL`` (an fsync per commit, about 2 ms here) made the
writer fall behind under load through GIL hand-offs.

Loss window: at most `max_unflushed` counted recipients (default 1000) are ever
not yet committed. When that many are pending — the file is locked by another
process, the disk is full — `charge` answers UNAVAILABLE (the daemon's
``--on-store-error`` answer) until the writer catches up. So a crash or a
SIGKILL loses at most `max_unflushed` recipients and at most
`flush_interval` of notice claims; a clean stop (SIGTERM) loses nothing. An
OS crash or power loss can lose the commits of the last `sync_interval` too.

Complaint flags are rows in ``flags`` written by other tools; the writer reads
them every `flag_poll` seconds, so a new flag takes effect within that delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from relayops.policyd.rules import Charge, ChargeStatus, Outcome
from relayops.policyd.store import (
    COMPLAINT,
    UNAVAILABLE,
    MemoryCounters,
    OutageLog,
    StoreError,
)

log = logging.getLogger("relayops.policyd.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    customer TEXT NOT NULL,
    day TEXT NOT NULL,            -- local date of the subscription, ISO 8601
    count INTEGER NOT NULL,       -- accepted recipients that day
    PRIMARY KEY (customer, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notices (
    customer TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,           -- 'warning' | 'limit': claimed (sent once) that day
    PRIMARY KEY (customer, day, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flags (
    customer TEXT NOT NULL,
    flag TEXT NOT NULL,           -- 'complaint': temporarily disabled pending review
    reason TEXT NOT NULL DEFAULT '',
    expires_at REAL,              -- unix time, NULL = until removed
    PRIMARY KEY (customer, flag)
) WITHOUT ROWID;
"""

KEEP_DAYS = 2  # counters of days older than this (UTC) are deleted
SHUTDOWN_GRACE = 5.0  # seconds a clean stop keeps trying to write what is pending


def connect(path: Path, *, busy_timeout: float) -> sqlite3.Connection:
    """A connection with the daemon's settings (also used by tools and tests)."""
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


def set_flag(path: Path, customer: str, reason: str = "", *, ttl: float | None = None) -> None:
    """Set a customer's complaint flag in a SQLite store (for feedback-loop tooling)."""
    conn = connect(path, busy_timeout=5.0)
    try:
        expires = time.time() + ttl if ttl else None
        conn.execute(
            "INSERT INTO flags (customer, flag, reason, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (customer, flag) DO UPDATE SET reason = excluded.reason, "
            "expires_at = excluded.expires_at",
            (customer, COMPLAINT, reason, expires),
        )
    finally:
        conn.close()


def clear_flag(path: Path, customer: str) -> None:
    conn = connect(path, busy_timeout=5.0)
    try:
        conn.execute("DELETE FROM flags WHERE customer = ? AND flag = ?", (customer, COMPLAINT))
    finally:
        conn.close()


class SqliteStore:
    def __init__(
        self,
        path: Path,
        *,
        flush_interval: float = 0.05,
        max_unflushed: int = 1000,
        busy_timeout: float = 0.5,
        flag_poll: float = 1.0,
        sync_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.description = f"sqlite:{path}"
        self.flush_interval = flush_interval
        self.max_unflushed = max_unflushed
        self.busy_timeout = busy_timeout
        self.flag_poll = flag_poll
        self.sync_interval = sync_interval
        self._clock = clock
        self._mem = MemoryCounters()
        self._lock = threading.Lock()  # guards _mem's dirty maps and the two counts below
        self._unflushed = 0  # counted recipients not yet committed
        self._wake = threading.Event()
        self._stop = False
        self._outage = OutageLog(self.description)
        self._conn: sqlite3.Connection | None = None
        self._lockfile: int | None = None
        self._writer: threading.Thread | None = None
        self._next_flag_poll = 0.0
        self._next_sync = 0.0
        self._next_prune = 0.0

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer.start()

    def _open(self) -> None:
        lock_path = f"{self.path}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot create {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(
                f"{self.path} is in use by another relayops policyd; a SQLite store "
                "belongs to one daemon (share counters between daemons with Redis)"
            ) from None
        self._lockfile = fd
        deadline = time.monotonic() + 10 * self.busy_timeout + 5
        while True:
            try:
                self._conn = connect(self.path, busy_timeout=self.busy_timeout)
                self._load(self._conn)
                break
            except sqlite3.Error as exc:
                if time.monotonic() > deadline:
                    raise StoreError(f"cannot open {self.path}: {exc}") from None
                time.sleep(self.busy_timeout)

    def _load(self, conn: sqlite3.Connection) -> None:
        since = self._oldest_kept().isoformat()
        mem = self._mem
        for cid, day, count in conn.execute(
            "SELECT customer, day, count FROM counters WHERE day >= ?", (since,)
        ):
            mem.counts[(cid, date.fromisoformat(day))] = count
        for cid, day, kind in conn.execute(
            "SELECT customer, day, kind FROM notices WHERE day >= ?", (since,)
        ):
            mem.claims.add((cid, date.fromisoformat(day), kind))
        mem.flags = self._read_flags(conn)

    async def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        if self._conn is not None:
            # Last chance for anything still pending: retry a locked file for a while.
            deadline = time.monotonic() + SHUTDOWN_GRACE
            await asyncio.to_thread(self._flush)
            while self._unflushed and time.monotonic() < deadline:
                await asyncio.sleep(self.busy_timeout)
                await asyncio.to_thread(self._flush)
            if self._unflushed:
                log.error(
                    "event=store_lost store=%s unwritten_recipients=%d",
                    self.description,
                    self._unflushed,
                )
            self._conn.close()
            self._conn = None
        if self._lockfile is not None:
            os.close(self._lockfile)
            self._lockfile = None

    @property
    def outage(self) -> bool:
        return self._outage.active

    # ---- request path (event loop) ---------------------------------------------------

    def charge(self, charge: Charge) -> Outcome:
        with self._lock:
            if self._unflushed >= self.max_unflushed:
                self._outage.failed(f"{self._unflushed} counted recipients not yet written")
                return UNAVAILABLE
            outcome = self._mem.charge_now(charge)
            if outcome.status is ChargeStatus.ACCEPTED:
                self._unflushed += 1
                if self._unflushed == self.max_unflushed // 4:
                    self._wake.set()
        return outcome

    # ---- writer thread ---------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._flush()
            now = time.monotonic()
            if now >= self._next_flag_poll and self._conn is not None:
                self._next_flag_poll = now + self.flag_poll
                with contextlib.suppress(sqlite3.Error):
                    self._mem.flags = self._read_flags(self._conn)  # one reference swap
            if now >= self._next_sync and self._conn is not None:
                self._next_sync = now + self.sync_interval
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            if now >= self._next_prune:
                self._next_prune = now + 3600
                self._prune()

    def _flush(self) -> None:
        conn = self._conn
        if conn is None:
            return
        with self._lock:
            counts, self._mem.dirty_counts = self._mem.dirty_counts, {}
            claims, self._mem.dirty_claims = self._mem.dirty_claims, set()
            taken = self._unflushed
        if not counts and not claims:
            if taken == 0:
                self._outage.recovered()
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO counters (customer, day, count) VALUES (?, ?, ?) "
                    "ON CONFLICT (customer, day) DO UPDATE "
                    "SET count = max(count, excluded.count)",
                    [(cid, day.isoformat(), n) for (cid, day), n in counts.items()],
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO notices (customer, day, kind) VALUES (?, ?, ?)",
                    [(cid, day.isoformat(), kind) for cid, day, kind in claims],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            with self._lock:  # put the batch back; newer values win
                for key, n in counts.items():
                    self._mem.dirty_counts[key] = max(n, self._mem.dirty_counts.get(key, 0))
                self._mem.dirty_claims |= claims
            self._outage.failed(str(exc))
            return
        with self._lock:
            self._unflushed -= taken
            pending = self._unflushed
        if pending < self.max_unflushed:
            self._outage.recovered()

    def _read_flags(self, conn: sqlite3.Connection) -> dict[str, str]:
        rows = conn.execute(
            "SELECT customer, reason FROM flags WHERE flag = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (COMPLAINT, self._clock()),
        )
        return {cid: reason for cid, reason in rows}

    def _oldest_kept(self) -> date:
        return datetime.fromtimestamp(self._clock(), UTC).date() - timedelta(days=KEEP_DAYS)

    def _prune(self) -> None:
        if self._conn is None:
            return
        oldest = self._oldest_kept()
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("DELETE FROM counters WHERE day < ?", (oldest.isoformat(),))
            self._conn.execute("DELETE FROM notices WHERE day < ?", (oldest.isoformat(),))
        with self._lock:
            self._mem.forget_before(oldest)
