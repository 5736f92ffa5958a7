"""The one DNS resolver every check uses, and thin typed queries over it.

Queries return plain data (strings); "no such record" is an empty list, while a DNS that
does not answer raises `DnsQueryError`, so a judge never mistakes an outage for absence.
"""

from __future__ import annotations

import ipaddress

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from relayops.checks.result import CheckInputError


class DnsQueryError(Exception):
    """Raised when the DNS gave no usable answer (timeout, SERVFAIL, refused): the record's
    state is unknown, so check --nameserver or retry rather than trust any verdict."""


def parse_nameserver(spec: str) -> tuple[str, int]:
    """`IP`, `IP:PORT` or `[IPv6]:PORT` -> (address, port).

    >>> parse_nameserver("127.0.0.1:5353")
    ('127.0.0.1', 5353)
    """
    host, port = spec, "53"
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif spec.count(":") == 1:
        host, port = spec.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise CheckInputError(
            f"--nameserver {spec!r}: give an IP address, optionally with :PORT"
        ) from exc
    if not 0 < number < 65536:
        raise CheckInputError(f"--nameserver {spec!r}: port must be 1-65535")
    return host, number


def make_resolver(nameserver: str | None = None, *, timeout: float = 3.0) -> dns.resolver.Resolver:
    """A resolver asking `nameserver` (IP[:PORT]) only, or the system's when None."""
    if nameserver is None:
        resolver = dns.resolver.Resolver()
    else:
        address, port = parse_nameserver(nameserver)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [address]
        resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout * 2
    resolver.cache = None
    return resolver


def _resolve(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> dns.resolver.Answer | None:
    # Absolute names: no search-domain suffixes (Mail-in-a-Box hit false DNSBL hits that way).
    qname = dns.name.from_text(name)
    try:
        return resolver.resolve(qname, rdtype, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.resolver.NoNameservers as exc:
        raise DnsQueryError(f"{name} {rdtype}: the nameserver failed (SERVFAIL/REFUSED)") from exc
    except dns.exception.Timeout as exc:
        raise DnsQueryError(f"{name} {rdtype}: no answer within {resolver.lifetime:g}s") from exc


def txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """TXT records at `name`, each record's character-strings joined (RFC 7208 3.3)."""
    answer = _resolve(resolver, name, "TXT")
    if answer is None:
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def addresses(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """A and AAAA addresses of `name`."""
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        answer = _resolve(resolver, name, rdtype)
        if answer is not None:
            found.extend(r.address for r in answer)
    return found


def ipv4_addresses(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    answer = _resolve(resolver, name, "A")
    return [] if answer is None else [r.address for r in answer]


def ptr(resolver: dns.resolver.Resolver, ip: str) -> list[str]:
    """PTR names of `ip`, lower-case, without the trailing dot."""
    answer = _resolve(resolver, dns.reversename.from_address(ip).to_text(), "PTR")
    if answer is None:
        return []
    return [r.target.to_text(omit_final_dot=True).lower() for r in answer]


def mx(resolver: dns.resolver.Resolver, domain: str) -> list[tuple[int, str]]:
    """(preference, exchange) pairs; a null MX (RFC 7505) appears as (0, '')."""
    answer = _resolve(resolver, domain, "MX")
    if answer is None:
        return []
    return sorted((r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in answer)
