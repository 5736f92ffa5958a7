"""SPF (RFC 7208): parse a record, count its DNS lookups, evaluate whether an IP passes.

The record's syntax is judged by checkdmarc (records.py); this module answers what
checkdmarc does not: "would this relay IP pass for this domain?" (RFC 7208 4), with the
lookup counts taken over the same snapshot as the verdict (docs/checks.md).
Here `fetch_spf` gathers every record the evaluation needs into an `SpfSnapshot`; all
else is pure over that snapshot.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

import dns.resolver

from relayops.checks import resolver as q

MAX_LOOKUPS = 10  # RFC 7208 4.6.4
MAX_VOID_LOOKUPS = 2  # RFC 7208 4.6.4: more is a permerror at most receivers
_LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_MECHANISMS = _LOOKUP_MECHANISMS | {"all", "ip4", "ip6"}
_FETCH_LIMIT = 40  # distinct names fetched: bounds include loops and hostile records

SpfResult = Literal["pass", "fail", "softfail", "neutral", "none", "permerror", "unknown"]
_QUALIFIER: dict[str, SpfResult] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


@dataclass(frozen=True, slots=True)
class SpfTerm:
    qualifier: str
    mechanism: str
    domain: str | None = None  # include/a/mx/exists/ptr target
    network: str | None = None  # ip4/ip6 network
    cidr4: int = 32
    cidr6: int = 128


@dataclass(frozen=True, slots=True)
class SpfRecord:
    terms: tuple[SpfTerm, ...]
    redirect: str | None
    errors: tuple[str, ...]


@dataclass(slots=True)
class SpfSnapshot:
    """Every DNS answer an SPF evaluation of one domain needs, captured once."""

    txt: dict[str, list[str]] = field(default_factory=dict)  # name -> its v=spf1 records
    addresses: dict[str, list[str]] = field(default_factory=dict)
    mx: dict[str, list[str]] = field(default_factory=dict)


def spf_records(txt_records: list[str]) -> list[str]:
    """The TXT records that are SPF records (RFC 7208 4.5: `v=spf1` then space or end)."""
    return [r for r in txt_records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


def _split_cidr(value: str) -> tuple[str, int, int]:
    """`domain/24//64` -> (domain, 24, 64); missing parts default to full length."""
    domain, _, dual = value.partition("//")
    cidr6 = int(dual) if dual else 128
    domain, _, single = domain.partition("/")
    cidr4 = int(single) if single else 32
    if not (0 <= cidr4 <= 32 and 0 <= cidr6 <= 128):
        raise ValueError(f"bad prefix length in {value!r}")
    return domain, cidr4, cidr6


def parse_spf(text: str) -> SpfRecord:
    """Parse one SPF record; syntax problems are collected, not raised."""
    tokens = text.split()
    errors: list[str] = []
    terms: list[SpfTerm] = []
    redirect: str | None = None
    if not tokens or tokens[0].lower() != "v=spf1":
        return SpfRecord((), None, ("does not start with v=spf1",))
    for token in tokens[1:]:
        name, sep, value = token.partition("=")
        if sep and ":" not in name and "/" not in name:  # a modifier (RFC 7208 6)
            if name.lower() == "redirect":
                redirect = value.lower()
            continue
        qualifier = token[0] if token[0] in _QUALIFIER else "+"
        body = token[1:] if token[0] in _QUALIFIER else token
        mech, _, arg = body.partition(":")
        mech_name, slash, cidr = mech.partition("/")
        mech_name = mech_name.lower()
        if mech_name not in _MECHANISMS:
            errors.append(f"unknown mechanism {token!r}")
            continue
        try:
            if mech_name in ("ip4", "ip6"):
                net = ipaddress.ip_network(arg, strict=False)
                if (mech_name == "ip4") != (net.version == 4):
                    raise ValueError(f"{arg!r} is not an IPv{mech_name[-1]} network")
                terms.append(SpfTerm(qualifier, mech_name, network=str(net)))
            elif mech_name in ("include", "exists"):
                if not arg:
                    raise ValueError(f"{mech_name} needs a domain")
                terms.append(SpfTerm(qualifier, mech_name, domain=arg.lower()))
            elif mech_name in ("a", "mx"):
                domain, c4, c6 = _split_cidr(arg + (slash + cidr if slash else ""))
                terms.append(SpfTerm(qualifier, mech_name, domain.lower() or None, None, c4, c6))
            else:  # all, ptr
                terms.append(SpfTerm(qualifier, mech_name, domain=arg.lower() or None))
        except ValueError as exc:
            errors.append(f"{token!r}: {exc}")
    return SpfRecord(tuple(terms), redirect, tuple(errors))


def _targets(domain: str, record: SpfRecord) -> list[tuple[str, str]]:
    """(kind, name) of the DNS answers evaluating `record` at `domain` needs."""
    needed: list[tuple[str, str]] = []
    for term in record.terms:
        target = term.domain or domain
        if "%" in target:  # macros depend on the connecting client; not expanded here
            continue
        if term.mechanism == "include":
            needed.append(("txt", target))
        elif term.mechanism == "a":
            needed.append(("addresses", target))
        elif term.mechanism == "mx":
            needed.append(("mx", target))
    if record.redirect and "%" not in record.redirect:
        needed.append(("txt", record.redirect))
    return needed


def fetch_spf(resolver: dns.resolver.Resolver, domain: str) -> SpfSnapshot:
    """Query the SPF record of `domain` and everything its evaluation refers to."""
    snap = SpfSnapshot()
    todo: list[tuple[str, str]] = [("txt", domain.lower())]
    while todo and len(snap.txt) + len(snap.addresses) + len(snap.mx) < _FETCH_LIMIT:
        kind, name = todo.pop(0)
        if kind == "txt" and name not in snap.txt:
            snap.txt[name] = spf_records(q.txt(resolver, name))
            if len(snap.txt[name]) == 1:
                todo.extend(_targets(name, parse_spf(snap.txt[name][0])))
        elif kind == "addresses" and name not in snap.addresses:
            snap.addresses[name] = q.addresses(resolver, name)
        elif kind == "mx" and name not in snap.mx:
            snap.mx[name] = [host for _, host in q.mx(resolver, name) if host]
            todo.extend(("addresses", host) for host in snap.mx[name])
    return snap


def count_lookups(domain: str, snap: SpfSnapshot) -> tuple[int, list[str]]:
    """DNS-querying terms of `domain`'s SPF, counted recursively through include and
    redirect (RFC 7208 4.6.4), and the problems met on the way (loops, missing records)."""
    problems: list[str] = []

    def walk(name: str, path: tuple[str, ...]) -> int:
        if name in path:
            problems.append(f"include loop: {' -> '.join((*path, name))}")
            return 0
        records = snap.txt.get(name)
        if records is None:
            problems.append(f"{name}: not fetched (more than {_FETCH_LIMIT} names referenced)")
            return 0
        if len(records) != 1:
            what = "no SPF record" if not records else f"{len(records)} SPF records"
            problems.append(f"{name} has {what}")
            return 0
        record = parse_spf(records[0])
        total = 0
        for term in record.terms:
            if term.mechanism in _LOOKUP_MECHANISMS:
                total += 1
                if term.mechanism == "include" and term.domain and "%" not in term.domain:
                    total += walk(term.domain, (*path, name))
        if record.redirect:
            total += 1 + walk(record.redirect, (*path, name))
        return total

    return walk(domain.lower(), ()), problems


def void_lookups(domain: str, snap: SpfSnapshot) -> list[str]:
    """`a`/`mx` terms (recursively through include/redirect) whose name has no address or
    no MX: each is a "void lookup", of which RFC 7208 4.6.4 allows two."""
    void: list[str] = []
    seen: set[str] = set()

    def walk(name: str) -> None:
        records = snap.txt.get(name)
        if name in seen or not records or len(records) != 1:
            return
        seen.add(name)
        record = parse_spf(records[0])
        for term in record.terms:
            target = term.domain or name
            if term.mechanism == "a" and snap.addresses.get(target) == []:
                void.append(f"a:{target}")
            elif term.mechanism == "mx" and snap.mx.get(target) == []:
                void.append(f"mx:{target}")
            elif term.mechanism == "include":
                walk(target)
        if record.redirect:
            walk(record.redirect)

    walk(domain.lower())
    return void


def _in_network(ip: str, addresses: list[str], cidr4: int, cidr6: int) -> bool:
    addr = ipaddress.ip_address(ip)
    for candidate in addresses:
        prefix = cidr4 if ipaddress.ip_address(candidate).version == 4 else cidr6
        if addr in ipaddress.ip_network(f"{candidate}/{prefix}", strict=False):
            return True
    return False


class _LookupBudget:
    """The lookup terms check_host() has met so far in one evaluation (RFC 7208 4.6.4:
    "during SPF evaluation"), across includes and redirects."""

    def __init__(self) -> None:
        self.used = 0

    def spend(self) -> bool:
        """Count one more lookup term; False once it is the 11th (a permerror)."""
        self.used += 1
        return self.used <= MAX_LOOKUPS


def evaluate(domain: str, ip: str, snap: SpfSnapshot) -> SpfResult:
    """check_host() of RFC 7208 4 over the snapshot. Terms that need the connecting
    client's name (ptr, exists, macros) give `unknown` when reached before a match.

    A receiver stops with permerror at the 11th lookup term it meets, so an `ip4:` placed
    after ten includes never passes, while one placed first does.
    """
    return _check_host(domain, ip, snap, _LookupBudget())


def _check_host(domain: str, ip: str, snap: SpfSnapshot, budget: _LookupBudget) -> SpfResult:
    records = snap.txt.get(domain)
    if records is None:
        return "unknown"
    if not records:
        return "none"
    if len(records) > 1:
        return "permerror"
    record = parse_spf(records[0])
    if record.errors:
        return "permerror"
    for term in record.terms:
        if term.mechanism in _LOOKUP_MECHANISMS and not budget.spend():
            return "permerror"
        target = term.domain or domain
        if term.mechanism in ("ptr", "exists") or "%" in target:
            return "unknown"
        matched: bool
        if term.mechanism == "all":
            matched = True
        elif term.mechanism in ("ip4", "ip6"):
            assert term.network is not None
            matched = ipaddress.ip_address(ip) in ipaddress.ip_network(term.network)
        elif term.mechanism == "include":
            inner = _check_host(target, ip, snap, budget)
            if inner in ("none", "permerror"):
                return "permerror"
            if inner == "unknown":
                return "unknown"
            matched = inner == "pass"
        elif term.mechanism == "a":
            if target not in snap.addresses:
                return "unknown"
            matched = _in_network(ip, snap.addresses[target], term.cidr4, term.cidr6)
        else:  # mx
            if target not in snap.mx:
                return "unknown"
            hosts = snap.mx[target]
            if any(h not in snap.addresses for h in hosts):
                return "unknown"
            found = [a for h in hosts for a in snap.addresses[h]]
            matched = _in_network(ip, found, term.cidr4, term.cidr6)
        if matched:
            return _QUALIFIER[term.qualifier]
    if record.redirect:
        if not budget.spend():
            return "permerror"
        inner = _check_host(record.redirect, ip, snap, budget)
        return "permerror" if inner == "none" else inner
    return "neutral"
