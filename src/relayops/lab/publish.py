"""The repository's DNS records, arranged as zones for the lab's DNS host.

Every customer domain becomes a zone, as does the service domain and the lab's
reverse zone; a record goes to the most specific zone holding its name (so
`news.globex.example` records stay in their own zone). The lab adds its own host
records to whichever of these zones lacks them (`LabDNS.publish`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from relayops.compile.dkim import public_key_der
from relayops.compile.dns_records import (
    DnsRecord,
    domain_records,
    published_keys,
    service_domain_records,
    service_keys,
    service_records,
)
from relayops.lab.dns import DEFAULT_TTL, Record, in_zone
from relayops.lab.topology import SINK_FQDN
from relayops.model import Inventory, Repo, Status

KeyLookup = Callable[[str, str], bytes | None]


def repo_records(repo: Repo, inventory: Inventory, keys: KeyLookup) -> list[DnsRecord]:
    """What the operator and the (non-terminated) customers publish for this inventory."""
    records = service_records(inventory, repo.service)
    records += service_domain_records(inventory, repo.service, service_keys(repo.service, keys))
    for customer in sorted(repo.customers.values(), key=lambda c: c.id):
        if customer.status == Status.TERMINATED:
            continue
        for domain in customer.domains:
            published = published_keys(domain, keys)
            records += domain_records(customer, domain, inventory, repo.service, published)
    return sorted(set(records))


def customer_mx(repo: Repo, mail_host: str) -> list[DnsRecord]:
    """MX of every customer domain → `mail_host`: in the lab the destination host also plays
    the customers' own mail servers, so notices to a contact address and bounces to a
    customer's Return-Path arrive somewhere a test can read."""
    domains = sorted({d.name for c in repo.customers.values() for d in c.domains})
    return [
        DnsRecord(d, "MX", f"10 {mail_host}", "lab: the customer's mail server") for d in domains
    ]


def _absolute(value: str) -> str:
    return value if value.endswith(".") else value + "."


def _rdata(record: DnsRecord) -> str:
    """Zone-file rdata: host names in PTR/MX/CNAME made absolute, TXT left whole."""
    if record.type == "PTR" or record.type == "CNAME":
        return _absolute(record.value)
    if record.type == "MX":
        preference, _, exchange = record.value.partition(" ")
        return f"{preference} {_absolute(exchange)}"
    return record.value


def zone_of(name: str, zones: Iterable[str]) -> str | None:
    holders = [z for z in zones if in_zone(_absolute(name.lower()), z)]
    return max(holders, key=len) if holders else None


def lab_zones(
    records: Iterable[DnsRecord], zones: Iterable[str], *, ttl: int = DEFAULT_TTL
) -> dict[str, list[Record]]:
    """Records grouped by the most specific of `zones` (records outside them are dropped)."""
    names = sorted({z.rstrip(".").lower() for z in zones})
    out: dict[str, list[Record]] = {z: [] for z in names}
    for record in records:
        zone = zone_of(record.name, names)
        if zone is not None:
            out[zone].append(Record(_absolute(record.name), record.type, ttl, _rdata(record)))
    return out


def zone_names(repo: Repo, reverse_zone: str) -> list[str]:
    domains = {d.name for c in repo.customers.values() for d in c.domains}
    return sorted({*domains, repo.service.domain, reverse_zone})


def publishable(
    repo: Repo,
    inventory: Inventory,
    root: Path,
    reverse_zone: str,
    *,
    customer_mail_host: str = SINK_FQDN,
) -> dict[str, list[Record]]:
    """The zones to hand to `LabDNS.publish` for this repository and inventory."""

    def keys(domain: str, selector: str) -> bytes | None:
        return public_key_der(root, domain, selector)

    records = repo_records(repo, inventory, keys) + customer_mx(repo, customer_mail_host)
    return lab_zones(records, zone_names(repo, reverse_zone))
