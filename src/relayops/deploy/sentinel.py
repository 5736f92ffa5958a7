"""Shared counters behind Redis Sentinel, run on relays: which relay runs what, and its files.

When the inventory's `relayops_shared_counters` is ``redis+sentinel://`` (or
``rediss+sentinel://``) and sentinels it names are relays' addresses, each of those
relays runs a Redis data node and a Sentinel; the others named are run by someone
else (another inventory's relays sharing the counters, say). The first named is the
initial primary, the others start as its replicas; the sentinels (quorum: a majority) then
move the primary on a failure, and the daemons follow through them
(relayops.policyd.store_redis). Data nodes listen on `DATA_PORT` (`DATA_TLS_PORT`
and no plaintext port when the URL says TLS): the URL names only the sentinels.

Sentinel runs from Debian's redis-server binary in sentinel mode (what the
`redis-sentinel` package's /usr/bin/redis-sentinel symlink does) under relayops' own
service, `relayops-sentinel`: the lab image has no `redis-sentinel` package, and a
new image would rebuild the shared lab.

Sentinel owns its configuration file once it runs (it records the current primary,
the replicas and the other sentinels there on every change): the deploy writes it
only when it is missing (`Wanted.seed`), and fixes its owner and mode otherwise; a
later change of its settings or passwords is sent to the running sentinel
(relayops.deploy.sentinel_settings).
"""

from __future__ import annotations

from dataclasses import dataclass

from relayops.compile.templates import Templates
from relayops.deploy import redis_conf as rc
from relayops.deploy.counters import REDIS_TLS, redis_node_files
from relayops.deploy.errors import DeployError
from relayops.deploy.state import Wanted
from relayops.labca import Pem
from relayops.model import Inventory, RelayHost
from relayops.policyd.redis_url import RedisUrl

SENTINEL_CONF = "/etc/redis/relayops-sentinel.conf"
SENTINEL_PATHS = (SENTINEL_CONF, rc.SENTINEL_ACL_FILE)  # the sentinel's own; the rest: Redis's
DATA_PORT = 6379
DATA_TLS_PORT = 6380
# How long a primary may not answer before the sentinels call it down; a failover takes
# this plus the vote and the promotion (about a second), then the daemons reconnect.
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 30000


@dataclass(frozen=True)
class SentinelMember:
    host: RelayHost
    address: str
    sentinel_port: int


@dataclass(frozen=True)
class SentinelPlacement:
    """The counters' group (every address the URL names, the initial primary first) and
    the relays of this inventory among them, which the deploy runs."""

    addresses: tuple[str, ...]
    members: tuple[SentinelMember, ...]
    master: str
    tls: bool

    @property
    def data_port(self) -> int:
        return DATA_TLS_PORT if self.tls else DATA_PORT

    @property
    def primary(self) -> str:
        return self.addresses[0]

    @property
    def quorum(self) -> int:
        return len(self.addresses) // 2 + 1

    def member(self, host_name: str) -> SentinelMember | None:
        return next((m for m in self.members if m.host.name == host_name), None)


def _relay_of(inventory: Inventory, address: str) -> RelayHost | None:
    for relay in inventory.hosts:
        if address in {relay.ssh_hostname, *(str(ip.address) for ip in relay.ips)}:
            return relay
    return None


def sentinel_placement(inventory: Inventory) -> SentinelPlacement | None:
    """The relays of a ``redis+sentinel://`` counters URL; None for any other form, or when
    none of its sentinels is a relay of this inventory (a Redis group run elsewhere)."""
    if not inventory.shared_counters:
        return None
    try:
        url = RedisUrl.parse(inventory.shared_counters)
    except ValueError as exc:
        raise DeployError(f"relayops_shared_counters: {exc}") from None
    if not url.sentinel or url.master is None:
        return None
    relays = [_relay_of(inventory, e.host) for e in url.endpoints]
    if all(r is None for r in relays):
        return None
    if url.username != rc.POLICYD_USER:
        raise DeployError(
            f"relayops_shared_counters {url.redacted()}: name the daemon's ACL user, "
            f"…+sentinel://{rc.POLICYD_USER}@S1,S2,S3/{url.master}/N (the deployed "
            "Redis has no default user)"
        )
    members = tuple(
        SentinelMember(r, e.host, e.port)
        for e, r in zip(url.endpoints, relays, strict=True)
        if r is not None
    )
    names = [m.host.name for m in members]
    addresses = tuple(e.host for e in url.endpoints)
    if len(set(names)) != len(names) or len(set(addresses)) != len(addresses):
        raise DeployError(
            f"relayops_shared_counters {url.redacted()}: one host named twice; each "
            "sentinel and its data node run on a host of their own"
        )
    return SentinelPlacement(addresses, members, url.master, url.tls)


def sentinel_node(placement: SentinelPlacement, member: SentinelMember) -> rc.SentinelNode:
    """The member's sentinel: addresses, ports, TLS and the settings of its master."""
    return rc.SentinelNode(
        bind=("127.0.0.1", member.address),
        port=0 if placement.tls else member.sentinel_port,
        tls_port=member.sentinel_port if placement.tls else 0,
        tls=REDIS_TLS if placement.tls else None,
        primary=(placement.primary, placement.data_port),
        quorum=placement.quorum,
        announce=member.address,
        down_after_ms=DOWN_AFTER_MS,
        failover_timeout_ms=FAILOVER_TIMEOUT_MS,
        master=placement.master,
    )


def sentinel_conf(
    placement: SentinelPlacement,
    member: SentinelMember,
    passwords: rc.RedisPasswords,
    templates: Templates | None = None,
) -> str:
    """The sentinel's initial configuration (it rewrites the file afterwards; later
    changes of its settings reach it through relayops.deploy.sentinel_settings)."""
    values = rc.sentinel_values(sentinel_node(placement, member), passwords)
    return (templates or Templates()).render(SENTINEL_CONF, **values).decode()


def data_node(placement: SentinelPlacement, member: SentinelMember) -> rc.DataNode:
    """The member's Redis: a replica of the initial primary unless it is that primary."""
    primary = placement.primary
    return rc.DataNode(
        bind=("127.0.0.1", member.address),
        port=0 if placement.tls else placement.data_port,
        tls_port=placement.data_port if placement.tls else 0,
        tls=REDIS_TLS if placement.tls else None,
        replica_of=None if member.address == primary else (primary, placement.data_port),
        announce=member.address,
    )


def sentinel_files(
    placement: SentinelPlacement,
    member: SentinelMember,
    passwords: rc.RedisPasswords,
    *,
    certificate: Pem | None,
    ca: bytes | None,
) -> list[Wanted]:
    """The member's data node files (as the single counters host's) plus its sentinel's."""
    files = redis_node_files(
        data_node(placement, member), passwords, tls=placement.tls, certificate=certificate, ca=ca
    )
    conf = sentinel_conf(placement, member, passwords).encode()
    users = rc.acl_file(rc.sentinel_users(passwords)).encode()
    return [
        *files,
        # Mode 600: auth-pass is plaintext. Sentinel rewrites the file: written once.
        Wanted(SENTINEL_CONF, conf, 0o600, "redis", "redis", secret=True, seed=True),
        Wanted(rc.SENTINEL_ACL_FILE, users, 0o640, "root", "redis"),
    ]
