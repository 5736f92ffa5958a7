"""The lab's address plan, as data.

`inventory/lab.py` uses exactly these addresses. The default lab lives in
198.18.0.0/24; a lab with `index=i` uses 198.18.i.0/24 and its own bridge,
namespaces and state directory, so a test can build a throwaway lab beside the
shared one (all inside 198.18.0.0/15, the benchmarking range of RFC 2544).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# Relay k is .(10+k). Its extra addresses are .(100+10k+j), j=1..3, for k <= 15 (the plan the
# example inventory names); relays 16..MAX_RELAYS, for fleet-sized labs, take theirs from the
# free block after the last relay address instead, three each.
MAX_RELAYS = 24
REGULAR_RELAYS = 15
EXTRA_ADDRESSES_PER_RELAY = 3
FLEET_EXTRA_BASE = 10 + MAX_RELAYS + 1  # right after the last relay address
RELAY_DOMAIN = "relay.example.net"
DNS_FQDN = "ns.lab"
SINK_FQDN = "isp.lab"
# Receiving domains the destination host accepts and the lab DNS points (MX) at it
# (blocked.lab refuses every relay for its reputation: see lab/receivers.py).
SINK_DOMAINS: tuple[str, ...] = (
    "isp.lab",
    "blocked.lab",
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
)
DNSBL_ZONE = "dnsbl.lab"
CACHE_DIR = Path("/var/cache/relayops-lab")

Role = Literal["relay", "dns", "sink"]


@dataclass(frozen=True)
class Host:
    """One lab host: a namespace, an overlay root and an sshd."""

    name: str
    fqdn: str
    role: Role
    address: str
    extra_addresses: tuple[str, ...] = ()

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.address, *self.extra_addresses)


@dataclass(frozen=True)
class Topology:
    """Every name and address of one lab instance."""

    index: int
    relay_count: int

    def __post_init__(self) -> None:
        if not 1 <= self.relay_count <= MAX_RELAYS:
            raise ValueError(f"relays must be between 1 and {MAX_RELAYS}, got {self.relay_count}")
        if not 0 <= self.index <= 1:
            raise ValueError(
                f"lab index must be 0 or 1 (198.18.0.0/24 or 198.18.1.0/24), got {self.index}"
            )

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"198.18.{self.index}.0/24")

    def ip(self, last_octet: int) -> str:
        return str(self.network.network_address + last_octet)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge (the controller: pyinfra, tests)."""
        return self.ip(1)

    @property
    def bridge(self) -> str:
        return f"rlylab{self.index}"

    @property
    def state_dir(self) -> Path:
        return Path(
            "/var/lib/relayops-lab" if self.index == 0 else f"/var/lib/relayops-lab{self.index}"
        )

    @property
    def netns_prefix(self) -> str:
        return f"rlylab{self.index}-"

    def netns(self, host: Host) -> str:
        return f"{self.netns_prefix}{host.name}"

    def veth(self, host: Host) -> str:
        """Root-namespace end of the host's veth pair (at most 15 characters)."""
        return f"rl{self.index}-{host.name}"

    @property
    def dns(self) -> Host:
        return Host(name="ns", fqdn=DNS_FQDN, role="dns", address=self.ip(2))

    @property
    def sink(self) -> Host:
        return Host(name="isp", fqdn=SINK_FQDN, role="sink", address=self.ip(3))

    @property
    def relays(self) -> tuple[Host, ...]:
        return tuple(self.relay(k) for k in range(1, self.relay_count + 1))

    def relay(self, k: int) -> Host:
        per = EXTRA_ADDRESSES_PER_RELAY
        if k <= REGULAR_RELAYS:
            extras = tuple(self.ip(100 + k * 10 + j) for j in range(1, per + 1))
        else:
            first = FLEET_EXTRA_BASE + (k - REGULAR_RELAYS - 1) * per
            extras = tuple(self.ip(first + j) for j in range(per))
        return Host(
            name=f"relay{k}",
            fqdn=f"relay{k}.{RELAY_DOMAIN}",
            role="relay",
            address=self.ip(10 + k),
            extra_addresses=extras,
        )

    @property
    def hosts(self) -> tuple[Host, ...]:
        return (self.dns, self.sink, *self.relays)

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if name in (host.name, host.fqdn):
                return host
        raise KeyError(f"no lab host named {name!r}; hosts: {[h.name for h in self.hosts]}")

    # Paths under the instance's state directory.
    def host_dir(self, host: Host) -> Path:
        return self.state_dir / host.name

    def root(self, host: Host) -> Path:
        """The host's merged root (the overlay mount point), readable from the root namespace."""
        return self.host_dir(host) / "root"

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def ssh_key(self) -> Path:
        """Private key authorized for root on every host (OpenSSH format, ed25519)."""
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def lock_file(self) -> Path:
        return Path(f"/run/relayops-lab{self.index}.lock")
