"""The feedback ledger in the fleet's Redis (new keys; the charge script is untouched).

Keys (beside store_redis.py's, same ``relayops:`` prefix):

    relayops:fb:seen:<sha256>              a report already applied (expires after 30 days)
    relayops:fb:tally:<customer>:<day>     hash kind -> n for a UTC day (expires after 40 days)
    relayops:fb:suppress                   hash "<customer> <address>" -> "<since> <expires> <why>"
    relayops:fb:suppress:version           incremented on every change of the hash above
    relayops:fb:audit                      list of JSON entries, newest first (capped)
    relayops:flag:complaint:<customer>     store_redis.py's complaint flag (value = reason)

One Lua script applies a report atomically (seen-check, tallies, suppressions, flag,
audit), so a retried delivery is a no-op and two relays ingesting at once never
double-count. The daemon polls the version key and reloads the hash only when it
changed (suppress.py). Tools use redis-py (synchronous, not on the request path).
"""

from __future__ import annotations

import json
import time
from datetime import date

import redis

from relayops.policyd.ledger import (
    TALLY_KINDS,
    AuditEntry,
    Change,
    LedgerError,
    Suppression,
    Tally,
    window_days,
)
from relayops.policyd.redis_url import RedisUrl
from relayops.policyd.store_redis import PREFIX, count_key, flag_key, sync_client

SEEN_TTL = 30 * 86400
TALLY_TTL = 40 * 86400
AUDIT_MAX = 10_000
SUPPRESS_KEY = f"{PREFIX}fb:suppress"
SUPPRESS_VERSION_KEY = f"{PREFIX}fb:suppress:version"
AUDIT_KEY = f"{PREFIX}fb:audit"

# KEYS: seen, tally, suppress hash, version, audit list, flag
# ARGV: seen ttl, tally ttl, audit max, flag reason ('' = none), n counts,
#       then n (kind, n) pairs, m suppressions (field, value) pairs, then audit JSON entries
APPLY_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
local n = tonumber(ARGV[5])
local i = 6
for _ = 1, n do
  redis.call('HINCRBY', KEYS[2], ARGV[i], tonumber(ARGV[i+1]))
  i = i + 2
end
if n > 0 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2])) end
local m = tonumber(ARGV[i]); i = i + 1
for _ = 1, m do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i+1])
  i = i + 2
end
if m > 0 then redis.call('INCR', KEYS[4]) end
if ARGV[4] ~= '' then redis.call('SET', KEYS[6], ARGV[4]) end
while i <= #ARGV do
  redis.call('LPUSH', KEYS[5], ARGV[i])
  i = i + 1
end
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[3]) - 1)
return 1
"""


# KEYS: suppress hash, version; ARGV: now, then candidate fields. Deletes a field only if
# it is still lapsed (an address suppressed again meanwhile stays).
PRUNE_LUA = """
local now, n = tonumber(ARGV[1]), 0
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local expires = tonumber(string.match(v, '^%S+ (%S+)'))
    if expires and expires <= now then
      redis.call('HDEL', KEYS[1], ARGV[i]); n = n + 1
    end
  end
end
if n > 0 then redis.call('INCR', KEYS[2]) end
return n
"""


def tally_key(customer: str, day: date) -> str:
    return f"{PREFIX}fb:tally:{customer}:{day.isoformat()}"


def suppress_field(customer: str, address: str) -> str:
    return f"{customer} {address.lower()}"


def suppress_value(s: Suppression) -> str:
    return f"{s.since:.3f} {s.expires:.3f} {s.reason}"


def parse_suppression(field: str, value: str) -> Suppression | None:
    """A hash entry back as a Suppression; None for an entry we did not write."""
    customer, _, address = field.partition(" ")
    parts = value.split(" ", 2)
    try:
        since, expires = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        return None
    return Suppression(customer, address, since, expires, parts[2] if len(parts) > 2 else "")


def _entry(e: AuditEntry) -> str:
    return json.dumps(
        {"at": e.at, "customer": e.customer, "action": e.action, "who": e.who, "why": e.why}
    )


class RedisLedger:
    def __init__(self, url: str, *, password: str | None = None, timeout: float = 5.0) -> None:
        parsed = RedisUrl.parse(url)  # ValueError: the caller reports the URL
        self.url = parsed.redacted()  # errors name the store, never its password
        self._client = sync_client(
            parsed, password=password, timeout=timeout, decode_responses=True
        )
        self._apply = self._client.register_script(APPLY_LUA)

    def close(self) -> None:
        self._client.close()

    def _call(self, fn: str, *args: object) -> object:
        try:
            return getattr(self._client, fn)(*args)
        except redis.RedisError as exc:
            raise LedgerError(f"{self.url}: {exc}") from None

    def apply(self, change: Change) -> bool:
        cid = change.customer or "-"
        counts = [(k, n) for k, n in change.counts.items() if n and change.customer]
        args: list[str | int] = [
            SEEN_TTL,
            TALLY_TTL,
            AUDIT_MAX,
            change.disable if change.disable is not None and change.customer else "",
            len(counts),
        ]
        for kind, n in counts:
            args += [kind, n]
        args.append(len(change.suppress))
        for s in change.suppress:
            args += [suppress_field(s.customer, s.address), suppress_value(s)]
        args += [_entry(e) for e in change.audit]
        keys = [
            f"{PREFIX}fb:seen:{change.digest}",
            tally_key(cid, change.day),
            SUPPRESS_KEY,
            SUPPRESS_VERSION_KEY,
            AUDIT_KEY,
            flag_key(cid),
        ]
        try:
            applied = bool(self._apply(keys=keys, args=args))
        except redis.RedisError as exc:
            raise LedgerError(f"{self.url}: {exc}") from None
        if applied:
            self.prune(now=time.time())
        return applied

    def prune(self, *, now: float) -> int:
        """Drop lapsed suppressions from the hash (the daemon ignores them already);
        the script re-checks each field, so an address suppressed again meanwhile stays."""
        raw = self._call("hgetall", SUPPRESS_KEY)
        assert isinstance(raw, dict)
        lapsed = [
            f
            for f, v in raw.items()
            if (s := parse_suppression(f, v)) is not None and s.expires <= now
        ]
        if not lapsed:
            return 0
        try:
            return int(self._client.eval(PRUNE_LUA, 2, SUPPRESS_KEY, SUPPRESS_VERSION_KEY,
                                         now, *lapsed))  # fmt: skip
        except redis.RedisError as exc:
            raise LedgerError(f"{self.url}: {exc}") from None

    def tally(self, customer: str, *, days: int, today: date) -> Tally:
        dates = window_days(today, days)
        try:
            pipe = self._client.pipeline(transaction=False)
            for day in dates:
                pipe.get(count_key(customer, day.isoformat()))
            for day in dates:
                pipe.hgetall(tally_key(customer, day))
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise LedgerError(f"{self.url}: {exc}") from None
        accepted = sum(int(r) for r in replies[: len(dates)] if r)
        counts: dict[str, int] = {}
        for row in replies[len(dates) :]:
            for kind, n in row.items():
                if kind in TALLY_KINDS:
                    counts[kind] = counts.get(kind, 0) + int(n)
        return Tally(accepted=accepted).plus(counts)

    def customers(self) -> list[str]:
        found: set[str] = set()
        try:
            for key in self._client.scan_iter(match=f"{PREFIX}fb:tally:*", count=1000):
                found.add(str(key).split(":")[3])
            for key in self._client.scan_iter(match=f"{PREFIX}count:*", count=1000):
                found.add(str(key).split(":")[2])
        except redis.RedisError as exc:
            raise LedgerError(f"{self.url}: {exc}") from None
        found |= set(self.flags())
        found |= {s.customer for s in self.suppressions(None, now=0)}
        return sorted(found)

    def suppressions(self, customer: str | None, *, now: float) -> list[Suppression]:
        raw = self._call("hgetall", SUPPRESS_KEY)
        assert isinstance(raw, dict)
        out = [parse_suppression(f, v) for f, v in raw.items()]
        return sorted(
            (
                s
                for s in out
                if s is not None and s.expires > now and customer in (None, s.customer)
            ),
            key=lambda s: (s.customer, s.address),
        )

    def unsuppress(self, customer: str, address: str, *, who: str, why: str, now: float) -> bool:
        gone = self._call("hdel", SUPPRESS_KEY, suppress_field(customer, address))
        if gone:
            self._call("incr", SUPPRESS_VERSION_KEY)
            entry = AuditEntry(now, customer, "unsuppressed", who, f"{address}: {why}")
            self._log(entry)
        return bool(gone)

    def flags(self) -> dict[str, str]:
        out: dict[str, str] = {}
        prefix = flag_key("")
        try:
            for key in self._client.scan_iter(match=prefix + "*", count=1000):
                value = self._client.get(key)
                if value is not None:
                    out[str(key)[len(prefix) :]] = str(value)
        except redis.RedisError as exc:
            raise LedgerError(f"{self.url}: {exc}") from None
        return out

    def release(self, customer: str, *, who: str, why: str, now: float) -> bool:
        gone = self._call("delete", flag_key(customer))
        if gone:
            self._log(AuditEntry(now, customer, "released", who, why))
        return bool(gone)

    def _log(self, entry: AuditEntry) -> None:
        self._call("lpush", AUDIT_KEY, _entry(entry))
        self._call("ltrim", AUDIT_KEY, 0, AUDIT_MAX - 1)

    def audit(self, customer: str | None, *, limit: int = 50) -> list[AuditEntry]:
        raw = self._call("lrange", AUDIT_KEY, 0, AUDIT_MAX - 1)
        assert isinstance(raw, list)
        out: list[AuditEntry] = []
        for item in raw:
            d = json.loads(item)
            if customer in (None, d["customer"]):
                out.append(AuditEntry(d["at"], d["customer"], d["action"], d["who"], d["why"]))
            if len(out) >= limit:
                break
        return out
