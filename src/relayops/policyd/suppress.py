"""Suppressed recipients at RCPT: a polled in-memory snapshot of the ledger's suppressions.

The daemon answers from memory (no store round trip per recipient) and reloads the
snapshot every `poll` seconds in a thread: from the SQLite file's `suppressions`
table, or from Redis (the hash is only re-read when its version key changed). A
snapshot older than `max_stale` seconds — the store has not answered since — is not
trusted: the daemon then answers with its --on-store-error reply, as it does when
the counters are out (never fail open by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from relayops.policyd.ledger import REDIS_SCHEMES, LedgerError, Suppression

if TYPE_CHECKING:
    from relayops.policyd.ledger_sqlite import SqliteLedger

log = logging.getLogger("relayops.policyd.suppress")

Snapshot = dict[tuple[str, str], Suppression]  # (customer, lower-case address) -> entry


class Source(Protocol):
    description: str

    def load(self, known_version: str | None) -> tuple[str | None, Snapshot | None]:
        """(version, snapshot); snapshot None = unchanged since `known_version`."""


class SqliteSource:
    """Reads the suppressions table again only when its version row moved."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"sqlite:{path}"
        self._ledger: SqliteLedger | None = None

    def load(self, known_version: str | None) -> tuple[str | None, Snapshot | None]:
        from relayops.policyd.ledger_sqlite import SqliteLedger

        try:
            if self._ledger is None:
                self._ledger = SqliteLedger(self.path)
            version = self._ledger.suppress_version()
            if version == known_version:
                return version, None
            rows = self._ledger.suppressions(None, now=0)
        except LedgerError:
            if self._ledger is not None:  # start afresh next time (file replaced, locked)
                self._ledger.close()
                self._ledger = None
            raise
        return version, {(s.customer, s.address): s for s in rows}


class RedisSource:
    def __init__(self, url: str, *, password: str | None = None) -> None:
        import redis

        from relayops.policyd.ledger_redis import SUPPRESS_KEY, SUPPRESS_VERSION_KEY
        from relayops.policyd.redis_url import RedisUrl
        from relayops.policyd.store_redis import sync_client

        parsed = RedisUrl.parse(url)
        self.description = parsed.redacted()
        self._keys = (SUPPRESS_KEY, SUPPRESS_VERSION_KEY)
        self._error = redis.RedisError
        self._client = sync_client(parsed, password=password, timeout=1.0, decode_responses=True)

    def load(self, known_version: str | None) -> tuple[str | None, Snapshot | None]:
        from relayops.policyd.ledger_redis import parse_suppression

        hash_key, version_key = self._keys
        try:
            version = str(self._client.get(version_key) or "0")
            if version == known_version:
                return version, None
            raw = self._client.hgetall(hash_key)
        except self._error as exc:
            raise LedgerError(f"{self.description}: {exc}") from None
        snap: Snapshot = {}
        for field, value in raw.items():
            s = parse_suppression(str(field), str(value))
            if s is not None:
                snap[(s.customer, s.address)] = s
        return version, snap


def source_for(spec: str, *, password: str | None = None) -> Source | None:
    if spec.startswith("sqlite:"):
        return SqliteSource(Path(spec[len("sqlite:") :]))
    if spec.startswith(REDIS_SCHEMES):
        return RedisSource(spec, password=password)
    return None


@dataclass(frozen=True, slots=True)
class Hit:
    """The recipient is suppressed (`entry`), or the snapshot is too old to tell (`stale`)."""

    entry: Suppression | None
    stale: bool = False


def reply(entry: Suppression, address: str) -> str:
    """``550 5.1.1 <addr> suppressed since DATE after a hard bounce`` (RFC 3463 5.1.1)."""
    since = datetime.fromtimestamp(entry.since, UTC).date().isoformat()
    shown = "".join(c for c in address if c.isprintable() and c not in "<>")[:200]
    return f"550 5.1.1 <{shown}> suppressed since {since} after a hard bounce"


class Suppressions:
    """The snapshot and its poller; the request path asks `quiet`, then `check`."""

    def __init__(
        self,
        source: Source,
        *,
        poll: float = 1.0,
        max_stale: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.poll = poll
        self.max_stale = max_stale
        self.clock = clock
        self.snapshot: Snapshot = {}
        self.loaded_at: float | None = None  # monotonic time of the last good load
        self._version: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing_since: float | None = None  # monotonic, while loads fail

    def _fresh(self) -> bool:
        loaded = self.loaded_at
        return loaded is not None and time.monotonic() - loaded <= self.max_stale

    def quiet(self) -> bool:
        """Fresh and empty: no recipient can be suppressed (the usual case, asked first so
        that the request path reads no recipient for it)."""
        return not self.snapshot and self._fresh()

    def check(self, customer: str, recipient: str) -> Hit | None:
        if not self._fresh():
            return Hit(None, stale=True)
        snapshot = self.snapshot
        if not snapshot:  # nothing suppressed (the usual case): no key to build
            return None
        entry = snapshot.get((customer, recipient.lower()))
        if entry is None or entry.expires <= self.clock():
            return None
        return Hit(entry)

    def refresh(self) -> None:
        """One load (thread or test); errors leave the previous snapshot, logged once."""
        try:
            version, snap = self.source.load(self._version)
        except LedgerError as exc:
            if self._failing_since is None:  # once per outage, not once per poll
                self._failing_since = time.monotonic()
                log.error(
                    "event=suppressions_unavailable store=%s error=%r",
                    self.source.description,
                    str(exc),
                )
            return
        if snap is not None:
            self.snapshot = snap  # one reference swap
        self._version = version
        self.loaded_at = time.monotonic()
        if self._failing_since is not None:
            log.warning(
                "event=suppressions_recovered store=%s outage_seconds=%.1f",
                self.source.description,
                self.loaded_at - self._failing_since,
            )
            self._failing_since = None

    async def start(self) -> None:
        await asyncio.to_thread(self.refresh)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            await asyncio.to_thread(self.refresh)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
