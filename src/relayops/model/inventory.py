"""Relay hosts and their IPs, read from the pyinfra inventories under `inventory/`."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from relayops.model.fields import DomainName, Slug, Strict


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


class RelayHost(Strict):
    name: str = Field(description="the pyinfra host name")
    fqdn: DomainName = Field(description="HELO and PTR name of the host's primary IP")
    ssh_hostname: str
    ips: list[RelayIp] = Field(min_length=1)


class Inventory(Strict):
    name: str
    path: Path
    hosts: list[RelayHost] = Field(min_length=1)
    shared_counters: str | None = Field(
        default=None, description="redis://HOST:PORT/N when the relays share quota counters"
    )
    dnsbl_zones: list[DnsblZone] = Field(
        default_factory=list, description="blocklists `relayops check` looks the relays up in"
    )

    def ip(self, name: str) -> tuple[RelayHost, RelayIp] | None:
        for host in self.hosts:
            for ip in host.ips:
                if ip.name == name:
                    return host, ip
        return None

    def pools(self) -> set[str]:
        return {ip.pool for host in self.hosts for ip in host.ips if ip.pool}
