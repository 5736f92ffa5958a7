"""Redis counter store: one atomic Lua call per batch, shared by every daemon of a fleet.

Keys (``N`` the database of ``redis://HOST:PORT/N``; all expire after two days,
longer than the longest local day, so nothing needs cleaning):

    relayops:count:<customer>:<YYYY-MM-DD>           accepted recipients that local day
    relayops:notice:<customer>:<YYYY-MM-DD>:warning  set once that day's warning is claimed
    relayops:notice:<customer>:<YYYY-MM-DD>:limit    set once that day's limit notice is claimed
    relayops:notice:<customer>:<YYYY-MM-DD>:resumed  the same for the "sending resumed" notice
    relayops:status:<customer>                       the account status last announced
                                                     (no expiry; SET ... GET swaps it)
    relayops:outbox                                  list of queued NoticeRequests (JSON),
                                                     popped by one daemon each (no expiry)
    relayops:flag:complaint:<customer>               set = temporarily disabled pending
                                                     complaint review (set by feedback tooling,
                                                     value = reason, optional TTL)

Requests that arrive while a call is in flight are batched into the next call
(one EVALSHA for up to `max_batch` charges), so the round trip is shared by
all connections. Redis runs a script atomically, so however many daemons
share one Redis, a customer's day never goes past its limit.

On an error or timeout every charge of the batch is UNAVAILABLE and the
connection is dropped; during an outage one attempt per `retry_interval`
reconnects, the charges in between fail at once, so no request waits longer
than `timeout` (connect, or reply). The hot path speaks RESP through
`resp.py` (see there why not redis-py's asyncio client).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from datetime import date

import redis

from relayops.policyd.resp import Address, ReplyError, RespConnection
from relayops.policyd.rules import Charge, ChargeStatus, Outcome
from relayops.policyd.store import COMPLAINT, UNAVAILABLE, OutageLog, StoreError

log = logging.getLogger("relayops.policyd.store")

PREFIX = "relayops:"
TTL_SECONDS = 2 * 86400

# KEYS: 4 per charge (count, warning claim, limit claim, complaint flag)
# ARGV: ttl, then 2 per charge (limit, warn_at)
# Returns 4 integers per charge: status (1 accepted, 0 over limit, 2 flagged),
# count after the call, warning claimed (0/1), limit notice claimed (0/1).
CHARGE_LUA = """
local ttl = tonumber(ARGV[1])
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local ck, wk, lk, fk = KEYS[4*i+1], KEYS[4*i+2], KEYS[4*i+3], KEYS[4*i+4]
  local limit, warn_at = tonumber(ARGV[2*i+2]), tonumber(ARGV[2*i+3])
  if redis.call('EXISTS', fk) == 1 then
    out[#out+1] = 2; out[#out+1] = 0; out[#out+1] = 0; out[#out+1] = 0
  else
    local count = tonumber(redis.call('GET', ck) or '0')
    local status = 0
    if count < limit then
      count = redis.call('INCR', ck)
      if count == 1 then redis.call('EXPIRE', ck, ttl) end
      status = 1
    end
    local warn, lim = 0, 0
    if count >= warn_at and redis.call('SET', wk, '1', 'NX', 'EX', ttl) then warn = 1 end
    if count >= limit and redis.call('SET', lk, '1', 'NX', 'EX', ttl) then lim = 1 end
    out[#out+1] = status; out[#out+1] = count; out[#out+1] = warn; out[#out+1] = lim
  end
end
return out
"""

_STATUS = {1: ChargeStatus.ACCEPTED, 0: ChargeStatus.OVER_LIMIT, 2: ChargeStatus.FLAGGED}


OUTBOX_KEY = f"{PREFIX}outbox"


def notice_key(customer: str, day: str, kind: str) -> str:
    return f"{PREFIX}notice:{customer}:{day}:{kind}"


def count_key(customer: str, day: str) -> str:
    return f"{PREFIX}count:{customer}:{day}"


def flag_key(customer: str) -> str:
    return f"{PREFIX}flag:{COMPLAINT}:{customer}"


class RedisStore:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.5,
        retry_interval: float = 0.25,
        max_batch: int = 256,
    ) -> None:
        try:
            self.address = Address.parse(url)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        self.description = url
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.max_batch = max_batch
        self._outage = OutageLog(url)
        self._sha = hashlib.sha1(CHARGE_LUA.encode()).hexdigest()
        self._conn: RespConnection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._pending: list[tuple[Charge, asyncio.Future[Outcome]]] = []
        self._in_flight = False
        self._retry_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        # Start even if Redis is not up yet (a fleet's Redis may come up after us):
        # until it is, the --on-store-error answer applies.
        self._loop = asyncio.get_running_loop()
        await self._connect()

    async def close(self) -> None:
        if self._connecting is not None:
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def outage(self) -> bool:
        return self._outage.active

    # ---- notices (off the hot path; the same pipelined connection) -------------------

    async def _call(self, *args: bytes | str | int) -> object:
        """One command, or None when Redis cannot answer (the outage log says why)."""
        conn = self._conn
        if conn is None or conn.closed:
            log.warning(
                "event=notice_store_call_failed store=%s error=not_connected", self.description
            )
            return None
        try:
            reply = await asyncio.wait_for(conn.call(*args), self.timeout)
        except (OSError, TimeoutError, ConnectionError) as exc:
            log.warning("event=notice_store_call_failed store=%s error=%r", self.description, exc)
            return None
        return None if isinstance(reply, ReplyError) else reply

    async def claim(self, customer: str, day: date, kind: str) -> bool:
        key = notice_key(customer, day.isoformat(), kind)
        return await self._call(b"SET", key, b"1", b"NX", b"EX", TTL_SECONDS) == b"OK"

    async def claimed(self, customer: str, day: date, kind: str) -> bool:
        return await self._call(b"EXISTS", notice_key(customer, day.isoformat(), kind)) == 1

    async def swap_statuses(self, statuses: Mapping[str, str]) -> dict[str, str | None]:
        conn = self._conn
        if conn is None or conn.closed:
            raise StoreError("not connected")
        # Pipelined on the shared connection; SET ... GET (Redis >= 6.2) swaps atomically.
        calls = {
            cid: conn.call(b"SET", f"{PREFIX}status:{cid}", status, b"GET")
            for cid, status in sorted(statuses.items())
        }
        previous: dict[str, str | None] = {}
        try:
            for cid, call in calls.items():
                reply = await asyncio.wait_for(call, self.timeout)
                if isinstance(reply, ReplyError):
                    raise StoreError(f"SET {PREFIX}status:{cid}: {reply.message}")
                previous[cid] = reply.decode() if isinstance(reply, bytes) else None
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise StoreError(f"cannot record account statuses: {exc!r}") from None
        return previous

    async def take_outbox(self, limit: int) -> list[str]:
        reply = await self._call(b"LPOP", OUTBOX_KEY, limit)  # Redis >= 6.2
        if not isinstance(reply, list):
            return []  # None: the list is empty (or Redis is out)
        return [item.decode("utf-8", "replace") for item in reply if isinstance(item, bytes)]

    # ---- request path ------------------------------------------------------------------

    def charge(self, charge: Charge) -> Outcome | asyncio.Future[Outcome]:
        loop = self._loop
        assert loop is not None, "start() first"
        if self._outage.active and loop.time() < self._retry_at:
            self._outage.failed("still unavailable")
            return UNAVAILABLE
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._pending.append((charge, fut))
        if not self._in_flight:
            self._send()
        return fut

    def _send(self) -> None:
        """Send the pending charges as one EVALSHA (or connect first)."""
        if not self._pending:
            self._in_flight = False
            return
        self._in_flight = True
        conn = self._conn
        if conn is None or conn.closed:
            if self._connecting is None:
                assert self._loop is not None
                self._connecting = self._loop.create_task(self._reconnect())
            return
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        keys: list[str] = []
        args: list[int] = [TTL_SECONDS]
        for charge, _ in batch:
            cid, day = charge.customer.id, charge.day.isoformat()
            notice = f"{PREFIX}notice:{cid}:{day}:"
            keys += (count_key(cid, day), notice + "warning", notice + "limit", flag_key(cid))
            args += (charge.limit, charge.warn_at)
        reply = conn.call(b"EVALSHA", self._sha, len(keys), *keys, *args)
        assert self._loop is not None
        timer = self._loop.call_later(self.timeout, conn.close)  # fails `reply`

        def done(fut: asyncio.Future[object]) -> None:
            timer.cancel()
            exc = fut.exception()
            result = fut.result() if exc is None else None
            if exc is not None or isinstance(result, ReplyError) or not isinstance(result, list):
                conn.close()  # NOSCRIPT, OOM, garbage: start afresh on a new connection
                self._failed(batch, str(exc or result))
            else:
                self._outage.recovered()
                for i, (_, charge_fut) in enumerate(batch):
                    status, count, warn, limit = result[4 * i : 4 * i + 4]
                    charge_fut.set_result(
                        Outcome(_STATUS[int(status)], int(count), bool(warn), bool(limit))
                    )
            self._send()

        reply.add_done_callback(done)

    def _failed(self, batch: list[tuple[Charge, asyncio.Future[Outcome]]], why: str) -> None:
        assert self._loop is not None
        self._retry_at = self._loop.time() + self.retry_interval
        self._outage.failed(why)
        for _, fut in batch + self._pending:
            if not fut.done():
                fut.set_result(UNAVAILABLE)
        self._pending.clear()

    async def _reconnect(self) -> None:
        try:
            await self._connect()
        finally:
            self._connecting = None
        if self._conn is None:
            self._failed([], "not connected")
        self._send()

    async def _connect(self) -> None:
        try:
            conn = await RespConnection.open(self.address, timeout=self.timeout)
            loaded = await asyncio.wait_for(conn.call(b"SCRIPT", b"LOAD", CHARGE_LUA), self.timeout)
        except (OSError, TimeoutError) as exc:
            self._conn = None
            assert self._loop is not None
            self._retry_at = self._loop.time() + self.retry_interval
            self._outage.failed(f"{type(exc).__name__}: {exc}")
            return
        if isinstance(loaded, ReplyError):
            conn.close()
            self._conn = None
            self._outage.failed(f"SCRIPT LOAD: {loaded.message}")
            return
        self._conn = conn


def set_flag(url: str, customer: str, reason: str = "", *, ttl: int | None = None) -> None:
    """Set a customer's complaint flag in a Redis store (for feedback-loop tooling)."""
    with redis.Redis.from_url(url) as client:
        client.set(flag_key(customer), reason or "1", ex=ttl)


def queue_notice(url: str, request_json: str) -> None:
    """Queue a notice request in a Redis store's outbox (outbox.queue_notice calls this)."""
    with redis.Redis.from_url(url) as client:
        client.rpush(OUTBOX_KEY, request_json)


def clear_flag(url: str, customer: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.delete(flag_key(customer))
