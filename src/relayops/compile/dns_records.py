"""The DNS records a sender domain and the relay IPs need: pure, shared with the lab DNS
server and `relayops check`.

Customers publish SPF, DKIM and DMARC in their own zones; the operator publishes the
pools' SPF records (`<pool>._spf.<service domain>`), the PTRs and their forward A records,
and the service domain's own SPF, DKIM, DMARC and TLS-RPT records (its notices and bounces).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from relayops.compile.placement import default_egress, pool_addresses, sending_addresses
from relayops.model import Customer, Domain, Inventory, RelayIp, Service

TXT_CHUNK = 255  # RFC 1035 3.3: one character-string holds at most 255 octets


@dataclass(frozen=True, order=True)
class DnsRecord:
    name: str  # fully qualified, no trailing dot
    type: str  # "TXT", "PTR", "A", "MX"
    value: str  # TXT: the whole text (split with txt_strings for a zone file)
    purpose: str

    def zone_line(self) -> str:
        """The record as a zone-file line (TXT split into quoted 255-octet strings)."""
        if self.type == "TXT":
            data = " ".join(f'"{part}"' for part in txt_strings(self.value))
        elif self.type in ("PTR", "MX") or self.type == "CNAME":
            data = self.value if self.value.endswith(".") else self.value + "."
        else:
            data = self.value
        return f"{self.name}. IN {self.type} {data}"


def txt_strings(value: str) -> list[str]:
    return [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]


def pool_spf_name(pool: str, service: Service) -> str:
    return f"{pool}._spf.{service.domain}"


def spf_mechanisms(customer: Customer, inventory: Inventory, service: Service) -> list[str]:
    """What the domain's SPF record must contain for the relays that send for it."""
    if customer.placement.pool is not None:
        return [f"include:{pool_spf_name(customer.placement.pool, service)}"]
    return [f"ip4:{address}" for address in sending_addresses(inventory, customer)]


def spf_record(customer: Customer, inventory: Inventory, service: Service) -> str:
    """The SPF TXT value the customer publishes at each of its sender domains."""
    return " ".join(["v=spf1", *spf_mechanisms(customer, inventory, service), "-all"])


def dkim_txt(public_key_der: bytes) -> str:
    """RFC 6376 3.6.1 key record: the base64 SubjectPublicKeyInfo in p=."""
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public_key_der).decode("ascii")


def domain_records(
    customer: Customer,
    domain: Domain,
    inventory: Inventory,
    service: Service,
    public_keys: Mapping[str, bytes | None],
) -> list[DnsRecord]:
    """Records the customer publishes for one sender domain.

    `public_keys` maps each published selector (`domain.dkim.published`) to its DER
    public key; a selector without a key yet gets no DKIM record.
    """
    spf = spf_record(customer, inventory, service)
    records = [
        DnsRecord(domain.name, "TXT", spf, "SPF (merge with an existing record: one per name)"),
        DnsRecord(
            f"_dmarc.{domain.name}",
            "TXT",
            f"v=DMARC1; p=none; rua=mailto:postmaster@{domain.name}; adkim=r; aspf=r",
            "DMARC (suggested start: monitor with p=none, then quarantine)",
        ),
    ]
    for selector in domain.dkim.published:
        der = public_keys.get(selector)
        if der is not None:
            records.append(
                DnsRecord(
                    f"{selector}._domainkey.{domain.name}",
                    "TXT",
                    dkim_txt(der),
                    _dkim_role(domain, selector),
                )
            )
    return sorted(records)


def _dkim_role(domain: Domain, selector: str) -> str:
    dkim = domain.dkim
    if dkim.next is not None and selector == dkim.next.selector:
        return "DKIM public key (rotation: publish before the switch; not signing yet)"
    if dkim.previous is not None and selector == dkim.previous.selector:
        return f"DKIM public key (rotated out: keep until {dkim.previous.retire_after})"
    return "DKIM public key"


def published_keys(
    domain: Domain, key_of: Callable[[str, str], bytes | None]
) -> dict[str, bytes | None]:
    """Each published selector of `domain` with its public key (None when not generated)."""
    return {selector: key_of(domain.name, selector) for selector in domain.dkim.published}


def service_keys(
    service: Service, key_of: Callable[[str, str], bytes | None]
) -> dict[str, bytes | None]:
    """Each published selector of the service domain with its public key (None if missing)."""
    return {selector: key_of(service.domain, selector) for selector in service.dkim.published}


def reverse_name(address: IPv4Address) -> str:
    return address.reverse_pointer


def ip_records(ip: RelayIp) -> list[DnsRecord]:
    """PTR and its matching A record (forward-confirmed reverse DNS) for one sending IP."""
    return [
        DnsRecord(reverse_name(ip.address), "PTR", ip.ptr, f"reverse DNS of IP {ip.name}"),
        DnsRecord(ip.ptr, "A", str(ip.address), f"forward name of IP {ip.name} (HELO name)"),
    ]


def helo_spf(ip: RelayIp) -> DnsRecord:
    """A bounce has an empty MAIL FROM, so receivers check SPF on the HELO name
    (RFC 7208 2.3): each PTR/HELO name authorises exactly its own address."""
    return DnsRecord(
        ip.ptr, "TXT", f"v=spf1 ip4:{ip.address} -all", f"SPF of the HELO name of IP {ip.name}"
    )


def service_addresses(inventory: Inventory) -> list[str]:
    """Where the service's own mail leaves from: each host's default egress (DSNs, notices)."""
    return sorted({str(default_egress(host).ip.address) for host in inventory.hosts})


def service_spf(inventory: Inventory) -> str:
    """The service domain's SPF: the addresses its notices and bounces leave from."""
    return " ".join(["v=spf1", *(f"ip4:{a}" for a in service_addresses(inventory)), "-all"])


def service_dmarc(service: Service) -> str:
    """Strict DKIM alignment (every notice and bounce is signed with d=<service domain>),
    relaxed SPF (a bounce's SPF identity is the HELO name, a subdomain), reports to postmaster.
    """
    return f"v=DMARC1; p=reject; adkim=s; aspf=r; rua=mailto:{service.postmaster}"


def service_domain_records(
    inventory: Inventory, service: Service, public_keys: Mapping[str, bytes | None]
) -> list[DnsRecord]:
    """What the service domain itself publishes so its notices and bounces authenticate
    (its SPF, DKIM, DMARC, TLS-RPT, and the SPF of every HELO name, for bounces).

    `public_keys` maps each published selector of `service.dkim` to its DER public key.
    """
    domain = service.domain
    records = [
        DnsRecord(
            domain, "TXT", service_spf(inventory), "SPF of the service domain (notices, bounces)"
        ),
        DnsRecord(f"_dmarc.{domain}", "TXT", service_dmarc(service), "DMARC of the service domain"),
        DnsRecord(
            f"_smtp._tls.{domain}",
            "TXT",
            f"v=TLSRPTv1; rua=mailto:{service.postmaster}",
            "TLS-RPT: receivers report TLS failures (RFC 8460)",
        ),
    ]
    records += [helo_spf(ip) for host in inventory.hosts for ip in host.ips]
    for selector in service.dkim.published:
        der = public_keys.get(selector)
        if der is not None:
            records.append(
                DnsRecord(
                    f"{selector}._domainkey.{domain}",
                    "TXT",
                    dkim_txt(der),
                    f"DKIM public key of the service domain (selector {selector})",
                )
            )
    return sorted(records)


def service_records(inventory: Inventory, service: Service) -> list[DnsRecord]:
    """The operator's records: MX of the service domain, pools' SPF, every IP's PTR and A."""
    records = [
        DnsRecord(service.domain, "MX", f"10 {host.fqdn}", "bounces and feedback-loop reports")
        for host in inventory.hosts
    ]
    for pool in sorted(inventory.pools()):
        mechanisms = " ".join(f"ip4:{a}" for a in pool_addresses(inventory, pool))
        records.append(
            DnsRecord(
                pool_spf_name(pool, service),
                "TXT",
                f"v=spf1 {mechanisms} -all",
                f"SPF of pool {pool} (customers include it)",
            )
        )
    for host in inventory.hosts:
        for ip in host.ips:
            records.extend(ip_records(ip))
    return sorted(set(records))
