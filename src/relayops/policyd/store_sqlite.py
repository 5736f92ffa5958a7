"""SQLite counter store: memory is authoritative, the file is written behind.

One daemon owns one SQLite file (an flock on ``PATH.lock`` enforces it; a
fleet shares Redis instead). Requests are counted in memory on the event loop.
A writer thread commits the changed counters (absolute values, so a retry is
idempotent) every `flush_interval` seconds, and back to back while a quarter
of `max_unflushed` recipients or more are pending, with WAL and
``synchronous=NORMAL``: a commit is in the OS's hands at once (safe from a
daemon crash) and the writer checkpoints, which fsyncs, every `sync_interval`
seconds. ``synchronous=FULL`` (an fsync per commit, about 2 ms here) made the
writer fall behind under load through GIL hand-offs. For the same reason a
commit is four statements whatever its size: the rows go in as one JSON
parameter (``json_each``) rather than ``executemany``, which releases and
re-takes the GIL for every row (1,000 customers at about 5k req/s here: mean
commit 4-5 ms instead of 4-6, slowest 28-47 ms instead of 40-84).

Back-pressure, not refusal. At most `max_unflushed` counted recipients
(default 1000) are ever not yet committed — the loss window. A recipient that
would be counted while the window is full waits (in order of arrival, on a
future; the event loop keeps serving everything else) until the writer's next
commit makes room, for at most `max_wait` seconds (default 0.5). A recipient
that would not be counted (over the limit, flagged) needs no room and is
answered at once. Only when a request has waited `max_wait` without the writer
freeing any room — the file is locked by another process, the disk is full —
is the store in an outage: the waiting requests and every request that finds
the window full get UNAVAILABLE (the daemon's ``--on-store-error`` answer) at
once, until a commit succeeds. So a writer that lags never costs a tempfail,
only latency; a writer that makes no progress for `max_wait` does.

A crash or a SIGKILL loses at most `max_unflushed` recipients and at most
`flush_interval` of notice claims; a clean stop (SIGTERM) loses nothing. An
OS crash or power loss can lose the commits of the last `sync_interval` too.

Complaint flags are rows in ``flags`` written by other tools; the writer reads
them every `flag_poll` seconds, so a new flag takes effect within that delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
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
CREATE TABLE IF NOT EXISTS class_counters (
    customer TEXT NOT NULL,
    day TEXT NOT NULL,
    isp_class TEXT NOT NULL,      -- a throttling class whose warm-up cap applied that day
    count INTEGER NOT NULL,       -- accepted recipients of that class that day
    PRIMARY KEY (customer, day, isp_class)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notices (
    customer TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,           -- a notice kind (notices.KINDS): claimed (sent once) that day
    PRIMARY KEY (customer, day, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flags (
    customer TEXT NOT NULL,
    flag TEXT NOT NULL,           -- 'complaint': temporarily disabled pending review
    reason TEXT NOT NULL DEFAULT '',
    expires_at REAL,              -- unix time, NULL = until removed
    PRIMARY KEY (customer, flag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS statuses (
    customer TEXT PRIMARY KEY,
    status TEXT NOT NULL          -- the account status last announced (suspension notices)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request TEXT NOT NULL         -- a NoticeRequest as JSON (notices.py), sent by the daemon
);
"""

KEEP_DAYS = 2  # counters of days older than this (UTC) are deleted
SHUTDOWN_GRACE = 5.0  # seconds a clean stop keeps trying to write what is pending


def connect(
    path: Path, *, busy_timeout: float, factory: type[sqlite3.Connection] = sqlite3.Connection
) -> sqlite3.Connection:
    """A connection with the daemon's settings (also used by tools and tests).

    `factory` is sqlite3's connection class hook; tests pass a subclass to slow
    the writer down.
    """
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout,
        isolation_level=None,
        check_same_thread=False,
        factory=factory,
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


def queue_notice(path: Path, request_json: str) -> None:
    """Queue a notice request in a SQLite store's outbox (outbox.queue_notice calls this)."""
    conn = connect(path, busy_timeout=5.0)
    try:
        conn.execute("INSERT INTO outbox (request) VALUES (?)", (request_json,))
    finally:
        conn.close()


# One statement per table and commit, the rows as one JSON array (see the module doc).
# `WHERE true` is SQLite's required disambiguation of an upsert fed by a SELECT.
UPSERT_COUNTS = """
INSERT INTO counters (customer, day, count)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
FROM json_each(?) WHERE true
ON CONFLICT (customer, day) DO UPDATE SET count = max(count, excluded.count)
"""
UPSERT_CLASS_COUNTS = """
INSERT INTO class_counters (customer, day, isp_class, count)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]')
FROM json_each(?) WHERE true
ON CONFLICT (customer, day, isp_class) DO UPDATE SET count = max(count, excluded.count)
"""
INSERT_CLAIMS = """
INSERT OR IGNORE INTO notices (customer, day, kind)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
FROM json_each(?)
"""

SELECT_STATUSES = "SELECT json_group_object(customer, status) FROM statuses"
UPSERT_STATUSES = """
INSERT INTO statuses (customer, status)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) WHERE true
ON CONFLICT (customer) DO UPDATE SET status = excluded.status
"""
TAKE_OUTBOX = """
SELECT json_group_array(json_array(id, CAST(request AS TEXT)))
FROM (SELECT id, request FROM outbox ORDER BY id LIMIT ?)
"""

Waiter = tuple[float, Charge, "asyncio.Future[Outcome]"]  # (loop deadline, charge, answer)


class SqliteStore:
    def __init__(
        self,
        path: Path,
        *,
        flush_interval: float = 0.05,
        max_unflushed: int = 1000,
        max_wait: float = 0.5,
        busy_timeout: float = 0.5,
        flag_poll: float = 1.0,
        sync_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        connection_factory: type[sqlite3.Connection] = sqlite3.Connection,
    ) -> None:
        self.path = path
        self.description = f"sqlite:{path}"
        self.flush_interval = flush_interval
        self.max_unflushed = max_unflushed
        self.max_wait = max_wait
        self.busy_timeout = busy_timeout
        self.flag_poll = flag_poll
        self.sync_interval = sync_interval
        self._clock = clock
        self._factory = connection_factory
        self._wake_at = max(1, max_unflushed // 4)  # pending recipients that start a commit
        self._mem = MemoryCounters()
        self._lock = threading.Lock()  # guards _mem and _unflushed (loop vs writer thread)
        self._unflushed = 0  # counted recipients not yet committed
        self._wake = threading.Event()
        self._stop = False
        self._outage = OutageLog(self.description)
        self._conn: sqlite3.Connection | None = None
        self._lockfile: int | None = None
        self._writer: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Requests waiting for room in the window, oldest first; event loop only.
        self._waiters: deque[Waiter] = deque()
        self._expiry: asyncio.TimerHandle | None = None
        self._admit_scheduled = False
        # Writer thread only: the current streak of failed commits.
        self._write_error: str | None = None
        self._failing_since = 0.0
        self._next_flag_poll = 0.0
        self._next_sync = 0.0
        self._next_prune = 0.0
        self._outbox: sqlite3.Connection | None = None  # its own connection, off the loop
        self._side_lock = asyncio.Lock()  # one outbox/statuses transaction at a time

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
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
                self._conn = connect(
                    self.path, busy_timeout=self.busy_timeout, factory=self._factory
                )
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
        for cid, day, isp, count in conn.execute(
            "SELECT customer, day, isp_class, count FROM class_counters WHERE day >= ?", (since,)
        ):
            mem.class_counts[(cid, date.fromisoformat(day), isp)] = count
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
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        # Still waiting at a stop: their connections are closed, so nobody reads an
        # answer; they are not counted (counting them would charge mail never sent).
        while self._waiters:
            _, _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(UNAVAILABLE)
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
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None
        if self._lockfile is not None:
            os.close(self._lockfile)
            self._lockfile = None

    @property
    def outage(self) -> bool:
        return self._outage.active

    # ---- notices (off the hot path) --------------------------------------------------

    async def claim(self, customer: str, day: date, kind: str) -> bool:
        with self._lock:  # the writer commits it with the next batch
            return self._mem.claim(customer, day, kind)

    async def claimed(self, customer: str, day: date, kind: str) -> bool:
        with self._lock:
            return self._mem.claimed(customer, day, kind)

    async def take_outbox(self, limit: int) -> list[str]:
        try:
            async with self._side_lock:
                return await asyncio.to_thread(self._take_outbox, limit)
        except sqlite3.Error as exc:
            log.warning("event=outbox_read_failed store=%s error=%r", self.description, str(exc))
            return []

    async def swap_statuses(self, statuses: Mapping[str, str]) -> dict[str, str | None]:
        try:
            async with self._side_lock:
                return await asyncio.to_thread(self._swap_statuses, dict(statuses))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record account statuses: {exc}") from None

    def _swap_statuses(self, statuses: dict[str, str]) -> dict[str, str | None]:
        # Rows in and out as one JSON value each: this transaction holds the file's write
        # lock, and a statement per row (executemany, a row per fetch) gives the GIL up and
        # waits for it again each time; under load, seconds for 1,000 customers, while the
        # writer waits for the lock and requests for room (bench/policyd/RESULTS.md "parse").
        conn = self._side_connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before: dict[str, str | None] = dict.fromkeys(statuses)
            (stored,) = conn.execute(SELECT_STATUSES).fetchone()
            before.update(json.loads(stored))
            conn.execute(UPSERT_STATUSES, (json.dumps(sorted(statuses.items())),))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return {cid: before[cid] for cid in statuses}

    def _side_connection(self) -> sqlite3.Connection:
        """The connection for the outbox and statuses (never the writer thread's)."""
        if self._outbox is None:
            self._outbox = connect(self.path, busy_timeout=self.busy_timeout)
        return self._outbox

    def _take_outbox(self, limit: int) -> list[str]:
        conn = self._side_connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            (taken,) = conn.execute(TAKE_OUTBOX, (limit,)).fetchone()  # one row: see above
            rows = sorted(json.loads(taken))  # the `limit` oldest, oldest first
            if rows:
                conn.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return [request for _, request in rows]

    # ---- request path (event loop) ---------------------------------------------------

    def charge(self, charge: Charge) -> Outcome | asyncio.Future[Outcome]:
        with self._lock:
            room = self._unflushed < self.max_unflushed and not self._waiters
            if room or not self._counts(charge):  # no room needed to refuse
                return self._charge_now(charge)
        if self._outage.active:  # the writer is stuck: do not make this one wait too
            self._outage.failed("")
            return UNAVAILABLE
        return self._wait(charge)

    def _counts(self, charge: Charge) -> bool:
        """Whether `charge_now` would count this recipient, i.e. it needs room in the window."""
        cid = charge.customer.id
        mem = self._mem
        if cid in mem.flags or mem.counts.get((cid, charge.day), 0) >= charge.limit:
            return False
        isp = charge.isp_class
        return isp is None or mem.class_counts.get((cid, charge.day, isp), 0) < charge.class_limit

    def _charge_now(self, charge: Charge) -> Outcome:
        """Count in memory; the caller holds `_lock`."""
        outcome = self._mem.charge_now(charge)
        if outcome.status is ChargeStatus.ACCEPTED:
            self._unflushed += 1
            if self._unflushed == self._wake_at:
                self._wake.set()
        return outcome

    def _wait(self, charge: Charge) -> asyncio.Future[Outcome]:
        loop = self._loop
        assert loop is not None, "start() first"
        fut: asyncio.Future[Outcome] = loop.create_future()
        deadline = loop.time() + self.max_wait
        self._waiters.append((deadline, charge, fut))
        if self._expiry is None:
            self._expiry = loop.call_at(deadline, self._expire)
        self._wake.set()
        return fut

    def _admit(self) -> None:
        """Answer the waiting requests the window has room for, oldest first."""
        self._admit_scheduled = False
        waiters = self._waiters
        with self._lock:
            while waiters:
                _, charge, fut = waiters[0]
                if self._unflushed >= self.max_unflushed and self._counts(charge):
                    break
                waiters.popleft()
                if not fut.done():
                    fut.set_result(self._charge_now(charge))

    def _expire(self) -> None:
        """The oldest request has waited `max_wait`: unless room came, the store is out."""
        self._expiry = None
        self._admit()
        if not self._waiters:
            return
        loop = self._loop
        assert loop is not None
        oldest = self._waiters[0][0]
        if oldest > loop.time():
            self._expiry = loop.call_at(oldest, self._expire)
            return
        error = self._write_error
        why = (
            f"a request waited {self.max_wait:g}s for the writer; "
            f"{self._unflushed} counted recipients not yet written"
            + (f"; last write error: {error}" if error else "")
        )
        while self._waiters:
            _, _, fut = self._waiters.popleft()
            if not fut.done():
                self._outage.failed(why)
                fut.set_result(UNAVAILABLE)

    # ---- writer thread ---------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self._stop:
            if self._unflushed < self._wake_at:  # else: behind, commit again at once
                self._wake.wait(self.flush_interval)
            self._wake.clear()
            if not self._flush():
                time.sleep(self.flush_interval)  # failing at once (disk full): do not spin
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

    def _flush(self) -> bool:
        """Commit what changed; False if the commit failed (the batch is kept for a retry)."""
        conn = self._conn
        if conn is None:
            return True
        with self._lock:
            counts, self._mem.dirty_counts = self._mem.dirty_counts, {}
            claims, self._mem.dirty_claims = self._mem.dirty_claims, set()
            by_class, self._mem.dirty_class_counts = self._mem.dirty_class_counts, {}
            taken = self._unflushed
        if counts or claims or by_class:
            try:
                _commit(conn, counts, claims, by_class)
            except sqlite3.Error as exc:
                with self._lock:  # put the batch back; newer values win
                    for key, n in counts.items():
                        self._mem.dirty_counts[key] = max(n, self._mem.dirty_counts.get(key, 0))
                    dirty = self._mem.dirty_class_counts
                    for ckey, n in by_class.items():
                        dirty[ckey] = max(n, dirty.get(ckey, 0))
                    self._mem.dirty_claims |= claims
                self._write_failed(str(exc))
                return False
            self._write_resumed()
        with self._lock:
            self._unflushed -= taken
            pending = self._unflushed
        if pending < self.max_unflushed:
            self._outage.recovered()
            loop = self._loop
            if self._waiters and not self._admit_scheduled and loop is not None and not self._stop:
                self._admit_scheduled = True
                loop.call_soon_threadsafe(self._admit)
        return True

    def _write_failed(self, why: str) -> None:
        if self._write_error is None:  # once per streak; the outage log covers the requests
            self._failing_since = time.monotonic()
            log.warning(
                "event=store_write_failed store=%s error=%r unwritten=%d",
                self.description,
                why,
                self._unflushed,
            )
        self._write_error = why

    def _write_resumed(self) -> None:
        if self._write_error is not None:
            self._write_error = None
            log.warning(
                "event=store_write_resumed store=%s failing_seconds=%.1f",
                self.description,
                time.monotonic() - self._failing_since,
            )

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
            self._conn.execute("DELETE FROM class_counters WHERE day < ?", (oldest.isoformat(),))
        with self._lock:
            self._mem.forget_before(oldest)


def _commit(
    conn: sqlite3.Connection,
    counts: dict[tuple[str, date], int],
    claims: set[tuple[str, date, str]],
    by_class: dict[tuple[str, date, str], int] | None = None,
) -> None:
    """One transaction of absolute counter values and notice claims (idempotent)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if counts:
            rows = [[cid, day.isoformat(), n] for (cid, day), n in counts.items()]
            conn.execute(UPSERT_COUNTS, (json.dumps(rows),))
        if by_class:
            rows = [[cid, day.isoformat(), isp, n] for (cid, day, isp), n in by_class.items()]
            conn.execute(UPSERT_CLASS_COUNTS, (json.dumps(rows),))
        if claims:
            marks = [[cid, day.isoformat(), kind] for cid, day, kind in claims]
            conn.execute(INSERT_CLAIMS, (json.dumps(marks),))
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
