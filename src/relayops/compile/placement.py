"""Which host serves which customer, and from which source address ("egress") it sends.

A customer on a pool is served by every host holding an IP of that pool; a
customer on a dedicated IP only by the host holding that IP. On a host, each
pool sends from the first of its IPs there (by name); each dedicated IP is its
own egress.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from relayops.model import Customer, Inventory, RelayHost, RelayIp


@dataclass(frozen=True)
class Egress:
    transport: str  # the master.cf service name: "pool-shared-eu", "ip-dedicated-1"
    ip: RelayIp  # the address it binds to and whose PTR is its HELO name
    pool: str | None  # the pool name, None for a dedicated IP


def host_egresses(host: RelayHost) -> list[Egress]:
    """The host's egresses: one per pool present on it, one per dedicated IP; sorted."""
    by_pool: dict[str, RelayIp] = {}
    result: list[Egress] = []
    for ip in sorted(host.ips, key=lambda i: i.name):
        if ip.pool is not None:
            by_pool.setdefault(ip.pool, ip)
        else:
            result.append(Egress(f"ip-{ip.name}", ip, None))
    result.extend(Egress(f"pool-{name}", ip, name) for name, ip in by_pool.items())
    return sorted(result, key=lambda e: e.transport)


def default_egress(host: RelayHost) -> Egress:
    """Where unrouted mail (DSNs, notices, the first pool's customers) leaves from.

    The first pool by name if the host has one, else its first dedicated IP.
    """
    egresses = host_egresses(host)
    pools = [e for e in egresses if e.pool is not None]
    return (pools or egresses)[0]


def _index(host: RelayHost) -> dict[tuple[str, str], Egress]:
    """Egresses by ("pool", name) and ("ip", name): built once per look-up batch."""
    index: dict[tuple[str, str], Egress] = {}
    for egress in host_egresses(host):
        key = ("pool", egress.pool) if egress.pool is not None else ("ip", egress.ip.name)
        index[key] = egress
    return index


def _lookup(index: dict[tuple[str, str], Egress], customer: Customer) -> Egress | None:
    placement = customer.placement
    if placement.pool is not None:
        return index.get(("pool", placement.pool))
    if placement.dedicated_ip is not None:
        return index.get(("ip", placement.dedicated_ip))
    return None


def customer_egress(host: RelayHost, customer: Customer) -> Egress | None:
    """The egress this host uses for the customer, or None if the host does not serve it."""
    return _lookup(_index(host), customer)


def served(customers: dict[str, Customer], host: RelayHost) -> list[tuple[Customer, Egress]]:
    """Customers (any status) this host serves, sorted by id, with their egress."""
    index = _index(host)
    result = []
    for cid in sorted(customers):
        egress = _lookup(index, customers[cid])
        if egress is not None:
            result.append((customers[cid], egress))
    return result


def sending_addresses(inventory: Inventory, customer: Customer) -> list[IPv4Address]:
    """Every address the customer's mail may leave from, across the inventory (for SPF)."""
    addresses: set[IPv4Address] = set()
    for host in inventory.hosts:
        egress = customer_egress(host, customer)
        if egress is not None:
            addresses.add(egress.ip.address)
    return sorted(addresses)


def pool_addresses(inventory: Inventory, pool: str) -> list[IPv4Address]:
    """All addresses of a pool across the inventory (published in the pool's SPF record)."""
    return sorted({ip.address for h in inventory.hosts for ip in h.ips if ip.pool == pool})
