"""The paused (sending IP, ISP class) pairs: runtime state, like the quota counters.

Kept in a SQLite file on the relay (a sending IP lives on one relay, so its pauses need
no sharing between relays). Nothing here is in the repository or the deploy's files,
so drift detection never sees it; a pause ends by itself when `until` passes.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS pauses (
    ip TEXT NOT NULL,             -- the sending IP as its instance names it: ip-X, pool-Y
    isp_class TEXT NOT NULL,      -- a class of policies/throttling.yaml
    since REAL NOT NULL,          -- unix time of the reply that paused it
    until REAL NOT NULL,          -- unix time the pause ends by itself
    kind TEXT NOT NULL,           -- backoff.slowdown.SlowDown
    reply TEXT NOT NULL,          -- the receiver's words
    PRIMARY KEY (ip, isp_class)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Pause:
    ip: str
    isp_class: str
    since: float
    until: float
    kind: str
    reply: str

    def as_dict(self) -> dict[str, object]:
        return {
            "ip": self.ip,
            "isp_class": self.isp_class,
            "since": self.since,
            "until": self.until,
            "kind": self.kind,
            "reply": self.reply,
        }


class PauseBook:
    """Open, pause, look up; each call is one short transaction (several processes share it)."""

    def __init__(self, path: Path, *, busy_timeout: float = 2.0) -> None:
        self.path = path
        # One thread at a time, but maybe not the one that opened it (the server's loop).
        self._conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        # Switching to WAL does not wait on the busy handler: processes opening the file
        # at the same moment (watch, serve, status) retry instead of failing at start.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.executescript(SCHEMA)
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self._conn.close()

    def pause(self, p: Pause) -> bool:
        """Start or extend a pause (never shortens one); True if it was not paused before."""
        before = self.lookup(p.ip, p.isp_class, now=p.since)
        self._conn.execute(
            "INSERT INTO pauses (ip, isp_class, since, until, kind, reply) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ip, isp_class) DO UPDATE SET "
            "since = CASE WHEN until <= excluded.since THEN excluded.since ELSE since END, "
            "until = max(until, excluded.until), kind = excluded.kind, reply = excluded.reply",
            (p.ip, p.isp_class, p.since, p.until, p.kind, p.reply[:500]),
        )
        return before is None

    def lookup(self, ip: str, isp_class: str, *, now: float) -> Pause | None:
        row = self._conn.execute(
            "SELECT ip, isp_class, since, until, kind, reply FROM pauses "
            "WHERE ip = ? AND isp_class = ? AND until > ?",
            (ip, isp_class, now),
        ).fetchone()
        return None if row is None else Pause(*row)

    def active(self, *, now: float) -> list[Pause]:
        rows = self._conn.execute(
            "SELECT ip, isp_class, since, until, kind, reply FROM pauses WHERE until > ? "
            "ORDER BY ip, isp_class",
            (now,),
        )
        return [Pause(*row) for row in rows]

    def ended_between(self, start: float, end: float) -> list[Pause]:
        """Pauses whose end fell in (start, end]: the mail they held can go now."""
        rows = self._conn.execute(
            "SELECT ip, isp_class, since, until, kind, reply FROM pauses "
            "WHERE until > ? AND until <= ? ORDER BY ip, isp_class",
            (start, end),
        )
        return [Pause(*row) for row in rows]

    def forget_ended(self, *, now: float) -> int:
        return self._conn.execute("DELETE FROM pauses WHERE until <= ?", (now,)).rowcount
