"""Redis counter store: one atomic Lua call per batch, shared by every daemon of a fleet.

Keys (``N`` the database of ``redis://HOST:PORT/N``; all expire after two days,
longer than the longest local day, so nothing needs cleaning):

    relayops:count:<customer>:<YYYY-MM-DD>           accepted recipients that local day
    relayops:notice:<customer>:<YYYY-MM-DD>:warning  set once that day's warning is claimed
    relayops:notice:<customer>:<YYYY-MM-DD>:limit    set once that day's limit notice is claimed
    relayops:flag:complaint:<customer>               set = temporarily disabled pending
                                                     complaint review (set by feedback tooling,
                                                     value = reason, optional TTL)

Requests that arrive while a call is in flight are batched into the next call
(one EVALSHA for up to `max_batch` charges), so the round trip is shared by
all connections. Redis runs a script atomically, so however many daemons
share one Redis, a customer's day never goes past its limit.

On an error or timeout every charge of the batch is UNAVAILABLE; during an
outage only one call per `retry_interval` tries Redis, the others fail at
once, so no connection waits longer than `timeout`. redis-py reconnects by
itself when Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

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
        self.url = url
        self.description = url
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.max_batch = max_batch
        self._outage = OutageLog(url)
        self._client: aioredis.Redis | None = None
        self._script: Any = None
        self._pending: list[tuple[Charge, asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._client = aioredis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                health_check_interval=0,
            )
        except ValueError as exc:
            raise StoreError(f"invalid Redis URL {self.url!r}: {exc}") from None
        self._script = self._client.register_script(CHARGE_LUA)
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            # Start anyway: the fleet's Redis may come up after us; until then the
            # --on-store-error answer applies.
            self._outage.failed(str(exc))

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def outage(self) -> bool:
        return self._outage.active

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise StoreError("the Redis store is not started")
        return self._client

    def charge(self, charge: Charge) -> Outcome | asyncio.Future[Outcome]:
        loop = self._loop
        assert loop is not None, "start() first"
        if self._outage.active and loop.time() < self._retry_at:
            self._outage.failed("still unavailable")
            return UNAVAILABLE
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._pending.append((charge, fut))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_loop())
        return fut

    async def _flush_loop(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._run(batch)
        finally:
            self._flusher = None

    async def _run(self, batch: list[tuple[Charge, asyncio.Future[Outcome]]]) -> None:
        keys: list[str] = []
        args: list[int] = [TTL_SECONDS]
        for charge, _ in batch:
            cid, day = charge.customer.id, charge.day.isoformat()
            notice = f"{PREFIX}notice:{cid}:{day}:"
            keys += (count_key(cid, day), notice + "warning", notice + "limit", flag_key(cid))
            args += (charge.limit, charge.warn_at)
        try:
            result = await asyncio.wait_for(self._script(keys=keys, args=args), self.timeout * 2)
        except (RedisError, OSError, TimeoutError) as exc:
            assert self._loop is not None
            self._retry_at = self._loop.time() + self.retry_interval
            self._outage.failed(f"{type(exc).__name__}: {exc}")
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(UNAVAILABLE)
            return
        self._outage.recovered()
        for i, (_, fut) in enumerate(batch):
            status, count, warn, limit = result[4 * i : 4 * i + 4]
            if not fut.done():
                fut.set_result(Outcome(_STATUS[int(status)], int(count), bool(warn), bool(limit)))

    async def set_flag(self, customer: str, reason: str = "", *, ttl: int | None = None) -> None:
        """Set a customer's complaint flag (for feedback-loop tooling and tests)."""
        await self.client.set(flag_key(customer), reason or "1", ex=ttl)

    async def clear_flag(self, customer: str) -> None:
        await self.client.delete(flag_key(customer))
