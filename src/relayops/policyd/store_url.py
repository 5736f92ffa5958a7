"""The grammar of a counter-store URL: the one definition the daemon and `validate` share.

`relayops policyd --store` and the inventory's `relayops_shared_counters` both go
through `parse_store_url`, so a URL `relayops validate` accepts is one the daemon
starts with, and one it refuses is refused before any deploy. Redis URLs are
parsed by `redis_url.RedisUrl` (the daemon's client reads that), SQLite here:

    sqlite:PATH                                                   one host only
    redis[s]://[USER[:PASSWORD]@]HOST[:PORT][/N][?OPTIONS]        Redis (rediss: TLS)
    redis[s]+sentinel://[USER[:PASSWORD]@]S1[:PORT],…/MASTER[/N]  through Sentinel
"""

from __future__ import annotations

from dataclasses import dataclass

from relayops.policyd.redis_url import SCHEMES as REDIS_SCHEMES
from relayops.policyd.redis_url import RedisUrl

SHARED_FORMS = (
    "redis[s]://[USER@]HOST[:PORT][/N] or redis[s]+sentinel://[USER@]S1[:PORT],…/MASTER[/N]"
)


class StoreUrlError(ValueError):
    """Raised for a store URL the daemon would refuse; the message names the accepted forms."""


@dataclass(frozen=True, slots=True)
class StoreUrl:
    scheme: str  # sqlite, or one of redis_url.SCHEMES
    path: str | None = None  # sqlite only
    redis: RedisUrl | None = None  # the Redis forms

    @property
    def hosts(self) -> tuple[tuple[str, int], ...]:
        """Redis, or the Sentinels."""
        return tuple((e.host, e.port) for e in self.redis.endpoints) if self.redis else ()

    @property
    def db(self) -> int:
        return self.redis.db if self.redis else 0

    @property
    def tls(self) -> bool:
        return bool(self.redis and self.redis.tls)


def parse_store_url(url: str) -> StoreUrl:
    if url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
        if not path:
            raise StoreUrlError("sqlite: needs a file path (sqlite:/var/lib/relayops/x.sqlite)")
        return StoreUrl(scheme="sqlite", path=path)
    scheme = url.partition("://")[0]
    if scheme not in REDIS_SCHEMES:
        raise StoreUrlError(f"expected sqlite:PATH, {SHARED_FORMS}; got {scheme!r}")
    try:
        return StoreUrl(scheme=scheme, redis=RedisUrl.parse(url))
    except ValueError as exc:
        raise StoreUrlError(str(exc)) from None


def parse_shared_counters(url: str) -> StoreUrl:
    """A store several relays share: any Redis form, never a per-host SQLite file."""
    parsed = parse_store_url(url)
    if parsed.scheme == "sqlite":
        raise StoreUrlError(f"shared counters need {SHARED_FORMS}; sqlite is one host's only")
    for host, _port in parsed.hosts:
        # Every relay must reach it: a one-label name resolves only through a search domain.
        if "." not in host and ":" not in host:
            raise StoreUrlError(
                f"{url!r}: {host!r} is not an IP address or a fully qualified name "
                "every relay can resolve"
            )
    return parsed
