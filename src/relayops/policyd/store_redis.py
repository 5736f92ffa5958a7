"""Redis counter store: one atomic Lua call per batch, shared by every daemon of a fleet.

Keys (``N`` the database of ``redis://HOST:PORT/N``; all expire after two days,
longer than the longest local day, so nothing needs cleaning):

    relayops:count:<customer>:<YYYY-MM-DD>           accepted recipients that local day,
                                                     plus credit granted and not yet used
    relayops:credit:<customer>:<YYYY-MM-DD>          credit granted and not yet settled
                                                     (credit.py; lapses by itself)
    relayops:count:<customer>:<YYYY-MM-DD>:<class>   accepted recipients of an ISP class that
                                                     day (warm-up caps per class)
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

Requests that arrive while a call is in flight, or in the same pass of the
event loop, are batched into one call (one EVALSHA for up to `max_batch`
charges), so the round trip is shared by all connections. Redis runs a script
atomically, so however many daemons share one Redis, a customer's day never
goes past its limit. Away from the warning and the limit, the script grants runs of credit
(``credit=N`` in the URL, credit.py) that the daemon answers from without a round
trip.

On an error or timeout every charge of the batch is UNAVAILABLE and the
connection is dropped; during an outage reconnect attempts back off from
`retry_interval` to `max_retry_interval`, the charges in between fail at once,
so no request waits longer than `connect_timeout` (a connection attempt) or
`timeout` (a reply). The hot path speaks RESP through `resp.py` (see there why
not redis-py's asyncio client).

Production (URL forms in redis_url.py, docs/policyd.md): ACL user and password
(AUTH on every connection), TLS verified against a CA bundle, and Sentinel:
every connection attempt asks the sentinels for the primary, connects, and
checks ``ROLE`` says master; a lost connection, a timeout or a ``-READONLY``
reply (the primary was demoted) drops the connection, so the next attempt
follows the failover. ``wait=N`` sends ``WAIT N`` right behind each batch (same
round trip) and answers only once N replicas hold the counts: if fewer
acknowledge in time, the batch is UNAVAILABLE (tempfail; the counts stay, so
the error is over-counting, never over-sending).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from datetime import date

import redis
import redis.sentinel

from relayops.policyd.credit import CreditKey, Credits, Settlement
from relayops.policyd.redis_url import Endpoint, RedisUrl
from relayops.policyd.resp import ReplyError, RespConnection
from relayops.policyd.rules import Charge, ChargeStatus, Outcome
from relayops.policyd.store import COMPLAINT, UNAVAILABLE, OutageLog, StoreError

log = logging.getLogger("relayops.policyd.store")

PREFIX = "relayops:"
TTL_SECONDS = 2 * 86400

# KEYS: 2 per settlement (count, credit), then 6 per charge (count, warning claim, limit
# claim, complaint flag, class count, credit; the class count is the count key again
# when the charge has no ISP class cap)
# ARGV: ttl, credit key ttl (ms), m settlements, then 2 per settlement (returned, run
# size), then 4 per charge (limit, warn_at, class limit or -1 for none, credit wanted)
# Settlements first (credit.py): the unused part of a run leaves the count, the run
# leaves the outstanding credit. Then per charge 5 integers: status (1 accepted, 0 over
# limit, 2 flagged, 3 over the class's cap, 4 at the limit while credit is outstanding:
# ask again), count after the call less the credit still outstanding once past the
# warning (what the notices quote; the class's count for 3), warning claimed (0/1),
# limit notice claimed (0/1), recipients granted beyond this one (credit.py), as one
# space-separated string: one bulk reply the daemon splits in C, instead of an array
# parsed reply by reply in Python.
CHARGE_LUA = """
local ttl, credit_ttl, m = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for j = 0, m - 1 do
  local ck, ok = KEYS[2*j+1], KEYS[2*j+2]
  local back, size = tonumber(ARGV[4+2*j]), tonumber(ARGV[5+2*j])
  if back > 0 and tonumber(redis.call('GET', ck) or '0') >= back then
    redis.call('DECRBY', ck, back)
  end
  local owed = tonumber(redis.call('GET', ok) or '0')
  if owed > size then redis.call('DECRBY', ok, size) elseif owed > 0 then redis.call('DEL', ok) end
end
local k0, a0 = 2 * m, 3 + 2 * m
local out = {}
for i = 0, (#KEYS - k0) / 6 - 1 do
  local b = k0 + 6*i
  local ck, wk, lk, fk, kk, ok = KEYS[b+1], KEYS[b+2], KEYS[b+3], KEYS[b+4], KEYS[b+5], KEYS[b+6]
  local limit, warn_at = tonumber(ARGV[a0+4*i+1]), tonumber(ARGV[a0+4*i+2])
  local class_limit, want = tonumber(ARGV[a0+4*i+3]), tonumber(ARGV[a0+4*i+4])
  if redis.call('EXISTS', fk) == 1 then
    out[#out+1] = '2 0 0 0 0'
  else
    local count = tonumber(redis.call('GET', ck) or '0')
    local status = 0
    local in_class = 0
    if count < limit and class_limit >= 0 then
      in_class = tonumber(redis.call('GET', kk) or '0')
      if in_class >= class_limit then status = 3 end
    end
    if status == 3 then
      out[#out+1] = '3 ' .. in_class .. ' 0 0 0'
    elseif count >= limit and tonumber(redis.call('GET', ok) or '0') > 0 then
      out[#out+1] = '4 ' .. count .. ' 0 0 0'
    else
      local extra = 0
      if count < limit then
        -- Credit for charges without a class cap, never across a notice threshold:
        -- the recipient that reaches the warning and the one that reaches the limit
        -- are each charged alone, so a charge claims each notice.
        local stop = warn_at - 1
        if count >= warn_at then stop = limit - 1 end
        extra = math.min(want - 1, stop - 1 - count)
        if extra < 1 or class_limit >= 0 then extra = 0 end
        count = redis.call('INCRBY', ck, 1 + extra)
        if count == 1 + extra then redis.call('EXPIRE', ck, ttl) end
        if class_limit >= 0 and redis.call('INCR', kk) == 1 then redis.call('EXPIRE', kk, ttl) end
        if extra > 0 then
          redis.call('INCRBY', ok, extra)
          redis.call('PEXPIRE', ok, credit_ttl)
        end
        status = 1
      end
      -- Notices count what was accepted: credit other daemons still hold is not
      -- (nothing is outstanding without credit, and for a day that took none).
      local warn, lim = 0, 0
      local owed = 0
      if count >= warn_at then owed = tonumber(redis.call('GET', ok) or '0') end
      if count - owed >= warn_at and redis.call('SET', wk, '1', 'NX', 'EX', ttl) then warn = 1 end
      if count - owed >= limit and redis.call('SET', lk, '1', 'NX', 'EX', ttl) then lim = 1 end
      out[#out+1] = status .. ' ' .. (count - owed) .. ' ' .. warn .. ' ' .. lim .. ' ' .. extra
    end
  end
end
return table.concat(out, ' ')
"""

_STATUS = {
    1: ChargeStatus.ACCEPTED,
    0: ChargeStatus.OVER_LIMIT,
    2: ChargeStatus.FLAGGED,
    3: ChargeStatus.OVER_CLASS_LIMIT,
}
_ASK_AGAIN = 4


def _bulk(value: str | int) -> bytes:
    data = str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def charge_fragments(charge: Charge, credit: int = 0) -> tuple[bytes, bytes]:
    """A charge's 6 keys and 4 arguments of CHARGE_LUA, RESP-encoded.

    The same for every recipient of a customer's day (and ISP class), so the store
    keeps them (encoding 10 arguments per request was a fifth of the Redis path's Python).
    `credit` is the run the daemon asks for (credit.py; 0 or 1: none).
    """
    cid, day = charge.customer.id, charge.day.isoformat()
    ck = count_key(cid, day)
    isp = charge.isp_class
    keys = (
        ck,
        notice_key(cid, day, "warning"),
        notice_key(cid, day, "limit"),
        flag_key(cid),
        ck if isp is None else class_count_key(cid, day, isp),
        credit_key(cid, day),
    )
    class_limit = -1 if isp is None else charge.class_limit
    args = (charge.limit, charge.warn_at, class_limit, credit)
    return b"".join(map(_bulk, keys)), b"".join(map(_bulk, args))


def settlement_fragments(s: Settlement) -> tuple[bytes, bytes]:
    """A settlement's 2 keys and 2 arguments of CHARGE_LUA, RESP-encoded."""
    day = s.day.isoformat()
    keys = (count_key(s.customer, day), credit_key(s.customer, day))
    return b"".join(map(_bulk, keys)), _bulk(s.returned) + _bulk(s.size)


OUTBOX_KEY = f"{PREFIX}outbox"


def notice_key(customer: str, day: str, kind: str) -> str:
    return f"{PREFIX}notice:{customer}:{day}:{kind}"


def count_key(customer: str, day: str) -> str:
    return f"{PREFIX}count:{customer}:{day}"


def credit_key(customer: str, day: str) -> str:
    return f"{PREFIX}credit:{customer}:{day}"


def class_count_key(customer: str, day: str, isp_class: str) -> str:
    return f"{PREFIX}count:{customer}:{day}:{isp_class}"


def flag_key(customer: str) -> str:
    return f"{PREFIX}flag:{COMPLAINT}:{customer}"


class DiscoveryError(ConnectionError):
    """No sentinel named a primary that answered as one (the message says what each said)."""


class RedisStore:
    def __init__(
        self,
        url: str | RedisUrl,
        *,
        timeout: float = 0.5,
        connect_timeout: float = 1.0,
        retry_interval: float = 0.25,
        max_retry_interval: float = 1.0,
        max_batch: int = 256,
    ) -> None:
        try:
            self.url = url if isinstance(url, RedisUrl) else RedisUrl.parse(url)
            self._tls = self.url.ssl_context()
        except (ValueError, OSError) as exc:  # OSError: the CA bundle cannot be read
            raise StoreError(str(exc)) from None
        self.description = self.url.redacted()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self.max_batch = max_batch
        self._backoff = retry_interval
        self._outage = OutageLog(self.description)
        self._sha = hashlib.sha1(CHARGE_LUA.encode()).hexdigest()
        self._evalsha = b"$7\r\nEVALSHA\r\n" + _bulk(self._sha)
        # (customer, day, limit, warn_at, isp class, class limit) -> charge_fragments();
        # cleared when large
        self._fragments: dict[
            tuple[str, object, int, int, str | None, int], tuple[bytes, bytes]
        ] = {}
        self._conn: RespConnection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._pending: list[tuple[Charge, asyncio.Future[Outcome]]] = []
        self._in_flight = False
        self._retry_at = 0.0
        self._sentinels = list(self.url.endpoints)  # the last one that answered first
        self.primary: Endpoint | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        window = self.url.credit_ms / 1000
        self._credits = Credits(window, window)
        self._sweeping = False
        # A charge asked again (status 4) gives up and is refused after this long: longer
        # than the outstanding-credit key lives (window + 1 s), so a holder that died
        # cannot make a waiter refuse early.
        self._max_wait = window + 1.5
        self._asked_since: dict[asyncio.Future[Outcome], float] = {}
        self._closing = False
        # For the metrics (relayops_policyd_credit_total): recipients answered from a run
        # without a round trip, and charges asked again at the limit.
        self.credit_counts = {"answered": 0, "waited": 0}

    async def start(self) -> None:
        # Start even if Redis is not up yet (a fleet's Redis may come up after us):
        # until it is, the --on-store-error answer applies.
        self._loop = asyncio.get_running_loop()
        await self._connect()

    async def close(self) -> None:
        self._closing = True
        if self._connecting is not None:
            await asyncio.gather(self._connecting, return_exceptions=True)
        # The call in flight may grant runs: wait for its answer (bounded by its timer),
        # so that they are settled below with the rest.
        assert self._loop is not None
        deadline = self._loop.time() + self.timeout + self.url.wait_ms / 1000 + 0.1
        while self._in_flight and self._conn is not None and self._loop.time() < deadline:
            await asyncio.sleep(0.005)
        conn = self._conn
        settlements = self._credits.drain()
        if conn is not None and not conn.closed and settlements:
            # Give back the unused credit, or it stays counted: the customer could send
            # less, never more, but a graceful stop should cost nothing.
            try:
                reply = await asyncio.wait_for(
                    conn.call_encoded(self._encode([], settlements)), self.timeout
                )
                if isinstance(reply, ReplyError):
                    raise ConnectionError(reply.message)
            except (OSError, TimeoutError, ConnectionError) as exc:
                log.warning(
                    "event=credit_not_returned store=%s runs=%d error=%r",
                    self.description,
                    len(settlements),
                    exc,
                )
        if conn is not None:
            conn.close()
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
        if self.url.credit > 1:
            key: CreditKey = (charge.customer.id, charge.day, charge.limit, charge.warn_at)
            now = loop.time()
            if self._credits.full(key, now):
                return Outcome(ChargeStatus.OVER_LIMIT, charge.limit)
            if charge.isp_class is None:
                count = self._credits.take(key, now)
                if count is not None:
                    self.credit_counts["answered"] += 1
                    self._sweep_soon()
                    return Outcome(ChargeStatus.ACCEPTED, count)
        if self._outage.active and loop.time() < self._retry_at:
            self._outage.failed("still unavailable")
            return UNAVAILABLE
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._queue(charge, fut)
        return fut

    def _queue(self, charge: Charge, fut: asyncio.Future[Outcome]) -> None:
        assert self._loop is not None
        self._pending.append((charge, fut))
        if not self._in_flight:
            # Sent once this pass of the event loop has read every connection that is
            # ready, so their charges share the call (sent at once: mostly batches of 1).
            self._in_flight = True
            self._loop.call_soon(self._send)

    def _ask_again(self, charge: Charge, fut: asyncio.Future[Outcome]) -> None:
        """The day is at its limit while credit is outstanding elsewhere: ask again once
        the holders have had time to settle; refuse after `_max_wait`."""
        assert self._loop is not None
        now = self._loop.time()
        since = self._asked_since.get(fut)
        if since is None:
            since = self._asked_since[fut] = now
            self.credit_counts["waited"] += 1
        if self._closing:
            del self._asked_since[fut]
            fut.set_result(UNAVAILABLE)
            return
        if now - since > self._max_wait:
            del self._asked_since[fut]
            fut.set_result(Outcome(ChargeStatus.OVER_LIMIT, charge.limit))
            return
        self._loop.call_later(0.02, self._queue, charge, fut)

    def _sweep_soon(self) -> None:
        """Settle used-up and lapsed runs shortly, with or without charges to carry them."""
        if self._sweeping:
            return
        self._sweeping = True
        assert self._loop is not None
        self._loop.call_later(0.05, self._sweep)

    def _sweep(self) -> None:
        assert self._loop is not None
        self._sweeping = False
        self._credits.expire(self._loop.time())
        if self._credits.live:
            self._sweep_soon()
        if self._credits.has_due and not self._in_flight:
            self._in_flight = True
            self._send()

    def _encode(self, batch: list[Charge], settlements: list[Settlement]) -> bytes:
        """One EVALSHA of CHARGE_LUA: the settlements, then the charges."""
        fragments = self._fragments
        if len(fragments) > 100_000:  # a day's worth of customers, many times over
            fragments.clear()
        credit = self.url.credit
        keys: list[bytes] = []
        args: list[bytes] = [_bulk(TTL_SECONDS), _bulk(self.url.credit_ms + 1000)]
        args.append(_bulk(len(settlements)))
        for settlement in settlements:
            k, a = settlement_fragments(settlement)
            keys.append(k)
            args.append(a)
        for charge in batch:
            key = (
                charge.customer.id,
                charge.day,
                charge.limit,
                charge.warn_at,
                charge.isp_class,
                charge.class_limit,
            )
            encoded = fragments.get(key)
            if encoded is None:
                encoded = fragments[key] = charge_fragments(charge, credit)
            keys.append(encoded[0])
            args.append(encoded[1])
        n, m = len(batch), len(settlements)
        # arguments: EVALSHA, sha, numkeys, 2m + 6n keys, ttl, credit ttl, m, 2m, 4n
        head = b"*%d\r\n%s%s" % (6 + 4 * m + 10 * n, self._evalsha, _bulk(2 * m + 6 * n))
        return b"".join([head, *keys, *args])

    def _send(self) -> None:
        """Send the pending charges and due settlements as one EVALSHA (or connect first)."""
        if not self._pending and not self._credits.has_due:
            self._in_flight = False
            return
        self._in_flight = True
        conn = self._conn
        if conn is None or conn.closed:
            assert self._loop is not None
            if not self._pending and self._loop.time() < self._retry_at:
                # Only settlements are due: they wait for the next attempt (the sweeper
                # comes back) rather than driving a reconnect loop through an outage.
                self._in_flight = False
                self._sweep_soon()
                return
            if self._connecting is None:
                assert self._loop is not None
                self._connecting = self._loop.create_task(self._reconnect())
            return
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        # A settlement lost with a failed call is not sent again: applied twice it would
        # return credit twice; lost, the credit stays counted (the safe side).
        settlements = self._credits.take_due()
        reply = conn.call_encoded(self._encode([c for c, _ in batch], settlements))
        waited = conn.call(b"WAIT", self.url.wait, self.url.wait_ms) if self.url.wait else None
        assert self._loop is not None
        allowed = self.timeout + (self.url.wait_ms / 1000 if waited is not None else 0)
        timer = self._loop.call_later(allowed, conn.close)  # fails `reply`

        def done(last: asyncio.Future[object]) -> None:
            timer.cancel()
            problems = (_problem(reply, bytes), _problem(waited, int) if waited else None)
            why = problems[0] or problems[1]
            acks = waited.result() if waited is not None and why is None else None
            if isinstance(acks, int) and acks < self.url.wait:
                why = f"WAIT: {acks} of {self.url.wait} replicas acknowledged"
                self._refund(batch, reply.result())
                self._failed(batch, why)  # the connection is fine: keep it
            elif why is not None:
                conn.close()  # READONLY, NOSCRIPT, OOM, lost, garbage: start afresh
                self._failed(batch, why)
            else:
                self._outage.recovered()
                result = reply.result()
                assert isinstance(result, bytes)
                self._answer(batch, list(map(int, result.split())))
            self._send()

        (waited or reply).add_done_callback(done)

    def _refund(self, batch: list[tuple[Charge, asyncio.Future[Outcome]]], reply: object) -> None:
        """The script ran but its answers are not given (too few replicas acknowledged):
        its charges stay counted (the safe side), the runs it granted go back at once."""
        if not isinstance(reply, bytes):
            return
        values = list(map(int, reply.split()))
        for i, (charge, _) in enumerate(batch):
            extra = values[5 * i + 4]
            if extra:
                self._credits.refund(charge.customer.id, charge.day, extra)
        self._sweep_soon()

    def _answer(
        self, batch: list[tuple[Charge, asyncio.Future[Outcome]]], values: list[int]
    ) -> None:
        assert self._loop is not None
        now = self._loop.time()
        asked = self._asked_since
        for i, (charge, fut) in enumerate(batch):
            status, count, warn, limit, extra = values[5 * i : 5 * i + 5]
            if status == _ASK_AGAIN:
                self._ask_again(charge, fut)
                continue
            if asked:
                asked.pop(fut, None)
            key: CreditKey = (charge.customer.id, charge.day, charge.limit, charge.warn_at)
            if extra:
                self._credits.grant(key, extra, count, now)
                self._sweep_soon()
            elif status == 0 and self.url.credit > 1:
                self._credits.mark_full(key, now)
            fut.set_result(Outcome(_STATUS[status], count, warn == 1, limit == 1))

    def _failed(self, batch: list[tuple[Charge, asyncio.Future[Outcome]]], why: str) -> None:
        assert self._loop is not None
        # Never earlier than a connection back-off already set.
        self._retry_at = max(self._retry_at, self._loop.time() + self.retry_interval)
        self._outage.failed(why)
        for _, fut in batch + self._pending:
            self._asked_since.pop(fut, None)
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
        """One attempt, within `connect_timeout`; on failure the next waits a doubled back-off."""
        assert self._loop is not None
        try:
            self._conn = await asyncio.wait_for(self._open(), self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            self._conn = None
            self._retry_at = self._loop.time() + self._backoff
            self._backoff = min(self._backoff * 2, self.max_retry_interval)
            why = f"{type(exc).__name__}: {exc}"
            log.debug("event=store_connect_failed store=%s error=%r", self.description, why)
            self._outage.failed(why)
            return
        self._backoff = self.retry_interval

    async def _open(self) -> RespConnection:
        """Find the primary (Sentinel) or take the one address, connect, check, load the script."""
        url = self.url
        endpoint = await self._discover() if url.sentinel else url.endpoints[0]
        conn = await RespConnection.open(
            endpoint,
            timeout=self.timeout,
            tls=self._tls,
            username=url.username,
            password=url.password,
            db=url.db,
        )
        try:
            # ROLE and SCRIPT LOAD go out together: one round trip (loading the script
            # on a replica is harmless; the connection is dropped then anyway).
            calls = [conn.call(b"SCRIPT", b"LOAD", CHARGE_LUA)]
            if url.sentinel:
                calls.append(conn.call(b"ROLE"))
            loaded, *role = await asyncio.wait_for(asyncio.gather(*calls), self.timeout)
            if role and not (isinstance(role[0], list) and role[0] and role[0][0] == b"master"):
                said = role[0].message if isinstance(role[0], ReplyError) else repr(role[0])[:60]
                raise DiscoveryError(f"{endpoint} named by Sentinel is not master: {said}")
            if isinstance(loaded, ReplyError):
                raise ConnectionError(f"SCRIPT LOAD on {endpoint}: {loaded.message}")
        except BaseException:
            conn.close()
            raise
        if endpoint != self.primary:
            log.info("event=store_primary store=%s primary=%s", self.description, endpoint)
            self.primary = endpoint
        return conn

    async def _discover(self) -> Endpoint:
        """``SENTINEL get-master-addr-by-name``, asking each sentinel in turn until one knows."""
        url = self.url
        assert url.master is not None
        said = []
        for sentinel in list(self._sentinels):
            try:
                conn = await RespConnection.open(
                    sentinel,
                    timeout=self.timeout,
                    tls=self._tls,
                    username=url.username,
                    password=url.password,
                )
                try:
                    reply = await asyncio.wait_for(
                        conn.call(b"SENTINEL", b"get-master-addr-by-name", url.master),
                        self.timeout,
                    )
                finally:
                    conn.close()
            except (OSError, TimeoutError) as exc:
                said.append(f"{sentinel}: {type(exc).__name__}: {exc}")
                continue
            if (
                isinstance(reply, list)
                and len(reply) == 2
                and all(isinstance(x, bytes) for x in reply)
            ):
                host, port = reply
                assert isinstance(host, bytes) and isinstance(port, bytes)
                self._sentinels.remove(sentinel)
                self._sentinels.insert(0, sentinel)  # ask the one that answered first next time
                return Endpoint(host.decode(), int(port))
            answer = reply.message if isinstance(reply, ReplyError) else "no such master"
            said.append(f"{sentinel}: {answer}")
        raise DiscoveryError(f"no sentinel names a primary for {url.master}: " + "; ".join(said))


def _problem(fut: asyncio.Future[object], expected: type) -> str | None:
    """Why a reply cannot be used (exception, error reply, wrong type), None if it can."""
    exc = fut.exception()
    if exc is not None:
        return str(exc)
    result = fut.result()
    if isinstance(result, ReplyError):
        return result.message
    if not isinstance(result, expected):
        return f"unexpected reply {result!r:.60}"
    return None


def sync_client(
    url: str | RedisUrl,
    *,
    password: str | None = None,
    timeout: float | None = None,
    decode_responses: bool = False,
) -> redis.Redis:
    """A redis-py client for tools, the feedback ledger and its pollers (off the request
    path): the same URL forms as the daemon's."""
    parsed = url if isinstance(url, RedisUrl) else RedisUrl.parse(url)
    if password is not None:
        parsed = parsed.with_password(password)
    auth: dict[str, object] = {"username": parsed.username, "password": parsed.password}
    if parsed.tls:
        auth |= {"ssl": True, "ssl_ca_certs": parsed.ca, "ssl_cert_reqs": "required"}
    if timeout is not None:
        auth |= {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if parsed.master is not None:
        sentinels = [(e.host, e.port) for e in parsed.endpoints]
        sentinel = redis.sentinel.Sentinel(sentinels, sentinel_kwargs=dict(auth), **auth)  # type: ignore[no-untyped-call]
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            parsed.master, db=parsed.db, decode_responses=decode_responses
        )
        return client
    e = parsed.endpoints[0]
    return redis.Redis(
        host=e.host,
        port=e.port,
        db=parsed.db,
        decode_responses=decode_responses,
        **auth,  # type: ignore[arg-type]
    )


def set_flag(
    url: str,
    customer: str,
    reason: str = "",
    *,
    ttl: int | None = None,
    password: str | None = None,
) -> None:
    """Set a customer's complaint flag in a Redis store (for feedback-loop tooling)."""
    with sync_client(url, password=password) as client:
        client.set(flag_key(customer), reason or "1", ex=ttl)


def queue_notice(url: str, request_json: str, *, password: str | None = None) -> None:
    """Queue a notice request in a Redis store's outbox (outbox.queue_notice calls this)."""
    with sync_client(url, password=password) as client:
        client.rpush(OUTBOX_KEY, request_json)


def clear_flag(url: str, customer: str, *, password: str | None = None) -> None:
    with sync_client(url, password=password) as client:
        client.delete(flag_key(customer))
