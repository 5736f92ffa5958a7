"""Run the selected check mechanisms over a `CheckTarget`; the only place that knows them
all. Resolver and clock are parameters so tests and the CLI choose them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import dns.resolver

from relayops.checks.dns import run_dns_checks
from relayops.checks.dnsbl import run_dnsbl_checks
from relayops.checks.result import CheckInputError, CheckResult
from relayops.checks.smtp import run_port_checks, run_relay_checks
from relayops.checks.target import CheckTarget
from relayops.checks.tls import run_tls_checks

MECHANISMS = ("dns", "tls", "ports", "relay", "dnsbl")
_RUN_ORDER = ("dns", "dnsbl", "ports", "tls", "relay")


def parse_only(spec: str | None) -> tuple[str, ...]:
    """`--only dns,tls` -> ('dns', 'tls'); None -> all mechanisms."""
    if not spec:
        return MECHANISMS
    chosen = tuple(dict.fromkeys(p.strip() for p in spec.split(",") if p.strip()))
    unknown = [c for c in chosen if c not in MECHANISMS]
    if unknown or not chosen:
        raise CheckInputError(
            f"--only {spec!r}: unknown {', '.join(unknown) or 'empty list'}; "
            f"choose from {','.join(MECHANISMS)}"
        )
    return chosen


def run_checks(
    target: CheckTarget,
    *,
    only: Iterable[str] = MECHANISMS,
    resolver: dns.resolver.Resolver,
    now: dt.datetime,
    timeout: float = 10.0,
    workers: int = 1,
    on_group: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Results in a fixed order (mechanism, then target order), whatever `workers` is.

    `on_group(mechanism)` is called as each mechanism starts (the CLI's progress)."""
    selected = set(only)
    results: list[CheckResult] = []
    started = on_group or (lambda _name: None)
    for name in _RUN_ORDER:
        if name not in selected:
            continue
        started(name)
        results += _run_one(name, target, resolver, now=now, timeout=timeout, workers=workers)
    return results


def _run_one(
    name: str,
    target: CheckTarget,
    resolver: dns.resolver.Resolver,
    *,
    now: dt.datetime,
    timeout: float,
    workers: int,
) -> list[CheckResult]:
    selected = {name}
    results: list[CheckResult] = []
    if "dns" in selected:
        results += run_dns_checks(target, resolver, workers=workers)
    if "dnsbl" in selected:
        results += run_dnsbl_checks(target, resolver, workers=workers)
    if "ports" in selected:
        results += run_port_checks(target, timeout=timeout)
    if "tls" in selected:
        results += run_tls_checks(target, now=now, timeout=timeout, workers=workers)
    if "relay" in selected:
        results += run_relay_checks(target, timeout=timeout, workers=workers)
    return results
