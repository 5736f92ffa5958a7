"""Relay hosts and their IPs, read from the pyinfra inventories under `inventory/`.

Every `relayops_*` key an inventory may set is declared here, once, with its type,
default and meaning: `HostVars` for a host's data, `GroupVars` for the relays
group's data (the dict after the host list). pyinfra ignores them; the loader
reads them (and refuses any other `relayops_*` key with its file:line), and the
compiler, the deploy and `relayops check` read the resulting `Inventory`.
Other keys (`ssh_*`, …) belong to pyinfra and pass through untouched.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from relayops.model.fields import DomainName, Slug, Strict
from relayops.policyd.store_url import parse_shared_counters

KEY_PREFIX = "relayops_"
# Where a host's TLS certificate comes from: the ACME client on the host (production),
# or the lab CA the deploy keeps on the controller.
TlsSource = Literal["acme", "lab-ca"]


def _counters_url(value: str) -> str:
    parse_shared_counters(value)  # StoreUrlError is a ValueError: pydantic reports it
    return value


CountersUrl = Annotated[str, AfterValidator(_counters_url)]


class RelayIp(Strict):
    """One sending IP of a relay host; customers refer to it by name."""

    name: Slug
    address: IPv4Address
    ptr: DomainName = Field(
        description="its reverse DNS name, also the HELO name when sending from it"
    )
    pool: Slug | None = Field(default=None, description="the shared pool this IP belongs to")
    dedicated: bool = Field(default=False, description="reserved for one customer")

    @model_validator(mode="after")
    def _role(self) -> Self:
        if (self.pool is not None) == self.dedicated:
            raise ValueError(
                "an IP is either in a 'pool' or 'dedicated: true', not both or neither"
            )
        return self


class DnsblZone(Strict):
    """A blocklist to check the relays' IPs (kind ip) or the sender domains (kind domain) in."""

    zone: DomainName
    kind: Literal["ip", "domain"] = "ip"
    refusal_codes: list[str] = Field(
        default_factory=list, description="answers meaning 'query refused', not 'listed'"
    )


class HostVars(Strict):
    """The `relayops_*` keys of one host's data: `("relay1…", {"relayops_ips": […]})`."""

    relayops_ips: list[RelayIp] = Field(
        min_length=1,
        description="the host's sending IPs; customers name them in placement.pool / "
        "placement.dedicated_ip, and the first is the host's own (its PTR is its HELO)",
    )
    relayops_tls: TlsSource | None = Field(
        default=None, description="this host's certificate source; default: the group's"
    )


class GroupVars(Strict):
    """The `relayops_*` keys of the relays group's data: `relays = ([hosts…], {…})`."""

    relayops_shared_counters: CountersUrl | None = Field(
        default=None,
        description="the Redis every relay's policy daemon counts quotas in "
        "(redis://HOST[:PORT][/N], rediss://… for TLS, redis+sentinel://HOSTS/SERVICE[/N]); "
        "required as soon as a customer's mail can leave from more than one relay. "
        "When HOST is a relay's address the deploy runs Redis there. "
        "Unset: each host counts alone in SQLite",
    )
    relayops_dnsbl_zones: list[DnsblZone] = Field(
        default_factory=list, description="blocklists `relayops check` looks the relays up in"
    )
    relayops_tls: TlsSource = Field(
        default="acme",
        description="where the relays' certificates come from: 'acme' (the host's ACME "
        "client has put them in place) or 'lab-ca' (the deploy issues them from the lab CA)",
    )
    relayops_age_identity: str | None = Field(
        default=None,
        description="age identity file (relative to the repository unless absolute) that "
        "decrypts secrets/ when deploying this inventory; RELAYOPS_AGE_IDENTITY overrides it. "
        "Unset: the deploy needs RELAYOPS_AGE_IDENTITY (production keeps it out of Git)",
    )
    relayops_ca_bundle: str | None = Field(
        default=None,
        description="PEM file `relayops check` verifies certificates against (relative to the "
        "repository unless absolute); unset: the system store",
    )
    relayops_check_nameserver: str | None = Field(
        default=None,
        description="the DNS server `relayops check` asks, IP[:PORT]; unset: the system's",
    )


HOST_KEYS = tuple(HostVars.model_fields)
GROUP_KEYS = tuple(GroupVars.model_fields)


class RelayHost(Strict):
    name: str = Field(description="the pyinfra host name")
    fqdn: DomainName = Field(description="HELO and PTR name of the host's primary IP")
    ssh_hostname: str
    ips: list[RelayIp] = Field(min_length=1)
    tls: TlsSource = "acme"


class Inventory(Strict):
    """One inventory file as the engine reads it, its keys resolved (host over group)."""

    name: str
    path: Path
    hosts: list[RelayHost] = Field(min_length=1)
    shared_counters: CountersUrl | None = None
    dnsbl_zones: list[DnsblZone] = Field(default_factory=list)
    age_identity: str | None = None
    ca_bundle: str | None = None
    check_nameserver: str | None = None

    def ip(self, name: str) -> tuple[RelayHost, RelayIp] | None:
        for host in self.hosts:
            for ip in host.ips:
                if ip.name == name:
                    return host, ip
        return None

    def pools(self) -> set[str]:
        return {ip.pool for host in self.hosts for ip in host.ips if ip.pool}

    def pool_hosts(self, pool: str) -> list[RelayHost]:
        """The relays with at least one IP in `pool`, in inventory order."""
        return [h for h in self.hosts if any(ip.pool == pool for ip in h.ips)]
