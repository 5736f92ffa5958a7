"""Shared quota counters: which relay runs Redis, and how it listens.

The inventory's `relayops_shared_counters` (redis://HOST:PORT/N) names the Redis
every relay's policy daemon uses; when HOST is one of the relays' addresses, the
deploy runs Redis there, listening on loopback and that address only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from relayops.deploy.errors import DeployError
from relayops.model import Inventory, RelayHost

REDIS_DROPIN = "/etc/redis/relayops.conf"
REDIS_MAIN = "/etc/redis/redis.conf"
INCLUDE_LINE = f"include {REDIS_DROPIN}"


@dataclass(frozen=True)
class RedisPlacement:
    host: RelayHost
    address: str
    port: int


def redis_placement(inventory: Inventory) -> RedisPlacement | None:
    """The relay that serves the shared counters, None if counters are per host or external."""
    url = inventory.shared_counters
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise DeployError(f"relayops_shared_counters {url!r}: expected redis://HOST:PORT/N")
    for relay in inventory.hosts:
        addresses = {relay.ssh_hostname, *(str(ip.address) for ip in relay.ips)}
        if parts.hostname in addresses:
            return RedisPlacement(relay, parts.hostname, parts.port or 6379)
    return None


def redis_bind(placement: RedisPlacement) -> tuple[str, ...]:
    """Loopback for the local policy daemon, the lab/production address for the others."""
    return ("127.0.0.1", placement.address)


def redis_dropin(placement: RedisPlacement) -> str:
    """Appended to Debian's redis.conf by an include: later directives win."""
    return (
        "# managed by relayops (deploy/tasks/redis.py): the relays' shared quota counters\n"
        f"bind {' '.join(redis_bind(placement))}\n"
        f"port {placement.port}\n"
        "# Reachable from the relays' network only: firewall it in production (docs/deploy.md).\n"
        "protected-mode no\n"
    )
