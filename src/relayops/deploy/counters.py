"""Shared quota counters: which relay runs Redis, and the files that make it safe.

The inventory's `relayops_shared_counters` names the Redis every relay's policy
daemon uses (URL forms: relayops.policyd.redis_url). When its host is one of the
relays' addresses, the deploy runs Redis there: `protected-mode yes`, listening
on loopback and that address only, the default user off and one ACL user per
role (relayops.deploy.redis_conf), TLS only when the URL says ``rediss://``
(the relay's certificate; the lab CA in the lab). The passwords come from
secrets/redis/ and reach the host only in mode-600 files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relayops.compile.redis_secrets import password_source
from relayops.compile.templates import Templates
from relayops.deploy import redis_conf as rc
from relayops.deploy.errors import DeployError
from relayops.deploy.state import Wanted
from relayops.labca import Pem
from relayops.model import Inventory, RelayHost
from relayops.policyd.redis_url import RedisUrl

REDIS_DROPIN = "/etc/redis/relayops.conf"
REDIS_MAIN = "/etc/redis/redis.conf"
INCLUDE_LINE = f"include {REDIS_DROPIN}"
# Redis runs as `redis` and cannot read root's key: it gets its own copies.
REDIS_TLS = rc.TlsFiles(
    cert="/etc/redis/tls/fullchain.pem",
    key="/etc/redis/tls/privkey.pem",
    ca="/etc/redis/tls/ca.pem",
)


@dataclass(frozen=True)
class RedisPlacement:
    host: RelayHost
    address: str
    port: int
    tls: bool
    user: str


def redis_placement(inventory: Inventory) -> RedisPlacement | None:
    """The relay that serves the shared counters, None if counters are per host or external."""
    spec = inventory.shared_counters
    if not spec:
        return None
    try:
        url = RedisUrl.parse(spec)
    except ValueError as exc:
        raise DeployError(f"relayops_shared_counters: {exc}") from None
    if url.sentinel:
        return None  # a Redis group of its own (docs/policyd.md), not a relay
    if url.username != rc.POLICYD_USER:
        raise DeployError(
            f"relayops_shared_counters {url.redacted()}: name the daemon's ACL user, "
            f"{url.redacted().split('://')[0]}://{rc.POLICYD_USER}@HOST:PORT/N (the deployed "
            "Redis has no default user)"
        )
    endpoint = url.endpoints[0]
    for relay in inventory.hosts:
        addresses = {relay.ssh_hostname, *(str(ip.address) for ip in relay.ips)}
        if endpoint.host in addresses:
            return RedisPlacement(relay, endpoint.host, endpoint.port, url.tls, rc.POLICYD_USER)
    return None


def redis_bind(placement: RedisPlacement) -> tuple[str, ...]:
    """Loopback for the local policy daemon, the lab/production address for the others."""
    return ("127.0.0.1", placement.address)


def read_passwords(decrypt: Callable[[str], bytes]) -> rc.RedisPasswords:
    """The three users' passwords; `decrypt` maps a secrets/ path to its plaintext."""

    def one(user: str) -> str:
        text = decrypt(password_source(user)).decode("utf-8").split("\n", 1)[0].strip()
        if not text:
            raise DeployError(f"{password_source(user)} holds an empty password")
        return text

    return rc.RedisPasswords(
        policyd=one(rc.POLICYD_USER), replica=one(rc.REPLICA_USER), sentinel=one(rc.SENTINEL_USER)
    )


def redis_dropin(
    placement: RedisPlacement, passwords: rc.RedisPasswords, templates: Templates | None = None
) -> str:
    """Appended to Debian's redis.conf by an include: later directives win."""
    return render_dropin(single_node(placement), passwords, templates)


def single_node(placement: RedisPlacement) -> rc.DataNode:
    """The one Redis of a ``redis://`` or ``rediss://`` counters URL: no replica."""
    return rc.DataNode(
        bind=redis_bind(placement),
        port=0 if placement.tls else placement.port,  # TLS: no plaintext port at all
        tls_port=placement.port if placement.tls else 0,
        tls=REDIS_TLS if placement.tls else None,
        replica_of=None,
    )


def render_dropin(
    node: rc.DataNode, passwords: rc.RedisPasswords, templates: Templates | None = None
) -> str:
    values = rc.data_node_values(node, passwords)
    return (templates or Templates()).render(REDIS_DROPIN, **values).decode()


def redis_files(
    placement: RedisPlacement,
    passwords: rc.RedisPasswords,
    *,
    certificate: Pem | None,
    ca: bytes | None,
) -> list[Wanted]:
    """Everything the counters host's Redis reads, with modes: secrets 600, hashes 640."""
    return redis_node_files(
        single_node(placement), passwords, tls=placement.tls, certificate=certificate, ca=ca
    )


def redis_node_files(
    node: rc.DataNode,
    passwords: rc.RedisPasswords,
    *,
    tls: bool,
    certificate: Pem | None,
    ca: bytes | None,
) -> list[Wanted]:
    """One data node's drop-in, ACL file and (TLS) certificate, key and CA."""
    files = [
        Wanted(REDIS_DROPIN, render_dropin(node, passwords).encode(), 0o600, "redis", "redis",
               secret=True),
        Wanted(rc.ACL_FILE, rc.acl_file(rc.data_node_users(passwords)).encode(), 0o640, "root",
               "redis"),
    ]  # fmt: skip
    if tls:
        if certificate is None or ca is None:
            raise DeployError(
                "relayops_shared_counters is rediss://: Redis needs the relay's certificate "
                "and its CA (relayops_tls: lab-ca, or an ACME certificate with a service CA)"
            )
        files += [
            Wanted(REDIS_TLS.cert, certificate.cert, 0o644, "redis", "redis"),
            Wanted(REDIS_TLS.key, certificate.key, 0o600, "redis", "redis", secret=True),
            Wanted(REDIS_TLS.ca, ca, 0o644, "redis", "redis"),
        ]
    return files
