"""DNSBL checks: relay IPs against IP zones, sender domains against domain zones.

An A answer does not always mean "listed": zones answer refused or rate-limited queries
with codes of their own (Spamhaus: 127.255.255.252 typo in the zone name, .254 query
through a public/open resolver, .255 excessive queries; Spamhaus DBL 127.0.1.255 for an
IP queried as a domain). Those are warnings ("could not tell"), never a listing, and
never "clean" either.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Literal

import dns.resolver

from relayops.checks import resolver as q
from relayops.checks.parallel import gather
from relayops.checks.result import CheckResult, error, ok, warning
from relayops.checks.target import CheckTarget, DnsblZone

CHECK = "dnsbl"
# Answers that mean "your query was not served" across common zones (see module doc).
DEFAULT_REFUSAL_CODES = frozenset({"127.0.0.1", "127.0.1.255"})
_REFUSAL_NET = ipaddress.ip_network("127.255.255.0/24")
_LISTED_NET = ipaddress.ip_network("127.0.0.0/8")

Verdict = Literal["clean", "listed", "refused"]


def query_name(item: str, zone: DnsblZone) -> str:
    """`198.51.100.7` under an IP zone -> `7.100.51.198.zone`; domains are prepended."""
    if zone.kind == "ip":
        address = ipaddress.ip_address(item)
        if address.version != 4:  # IPv6 zones use nibbles; none of the defaults serve them
            raise ValueError(f"{item} is not IPv4; IP zones are queried with IPv4 only")
        return ".".join(reversed(item.split("."))) + "." + zone.zone
    return f"{item.rstrip('.')}.{zone.zone}"


def classify(answers: Sequence[str], zone: DnsblZone) -> Verdict:
    """Pure verdict from the A records a zone returned (empty = NXDOMAIN = clean)."""
    if not answers:
        return "clean"
    refusal = set(zone.refusal_codes) | DEFAULT_REFUSAL_CODES
    listed = False
    for answer in answers:
        address = ipaddress.ip_address(answer)
        if answer in refusal or address in _REFUSAL_NET or address not in _LISTED_NET:
            return "refused"
        listed = True
    return "listed" if listed else "clean"


def judge(
    item: str, group: str, zone: DnsblZone, answers: Sequence[str], reason: str | None
) -> CheckResult:
    subject = f"{item} in {zone.zone}"
    verdict = classify(answers, zone)
    if verdict == "clean":
        return ok(CHECK, group, subject, f"{item} is not listed in {zone.zone}.")
    codes = ", ".join(answers)
    if verdict == "refused":
        return warning(
            CHECK,
            group,
            subject,
            f"{zone.zone} refused the query for {item} (answer {codes}: query refused, "
            "open/public resolver or rate limit), so its state is unknown; query through "
            "your own resolver or a registered data feed.",
        )
    why = f" ({reason})" if reason else ""
    return error(
        CHECK,
        group,
        subject,
        f"{item} is listed in {zone.zone} (answer {codes}){why}; stop the source of the "
        "spam, then request delisting from the list's operator.",
    )


def check_item(
    resolver: dns.resolver.Resolver, item: str, group: str, zone: DnsblZone
) -> CheckResult:
    name = query_name(item, zone)
    try:
        answers = q.ipv4_addresses(resolver, name)
        reason = None
        if classify(answers, zone) == "listed":
            reason = "; ".join(q.txt(resolver, name)) or None
    except q.DnsQueryError as exc:
        return warning(
            CHECK,
            group,
            f"{item} in {zone.zone}",
            f"{zone.zone} did not answer for {item} ({exc}); retry later.",
        )
    return judge(item, group, zone, answers, reason)


def run_dnsbl_checks(
    target: CheckTarget, resolver: dns.resolver.Resolver, *, workers: int = 1
) -> list[CheckResult]:
    """Every IPv4 relay IP in every IP zone, every sender domain in every domain zone."""
    queries: list[tuple[str, str, DnsblZone]] = []
    for host in target.hosts:
        for relay_ip in host.ips:
            if ipaddress.ip_address(relay_ip.address).version != 4:
                continue
            for zone in (z for z in target.dnsbl_zones if z.kind == "ip"):
                queries.append((relay_ip.address, f"host {host.fqdn}", zone))
    for domain in target.sender_domains:
        for zone in (z for z in target.dnsbl_zones if z.kind == "domain"):
            queries.append((domain.name, f"customer {domain.customer}", zone))
    return gather(lambda x: [check_item(resolver, *x)], queries, workers=workers)
