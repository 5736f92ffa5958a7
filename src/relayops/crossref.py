"""Rules that span files: each returns violations naming the file and field to fix.

Pure functions over validated models; the loader turns a violation's path into
file:line:column.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from relayops.model import (
    Customer,
    Inventory,
    IspClass,
    Notification,
    Plan,
    Status,
    WarmupSchedule,
)
from relayops.model.secrets import encrypted_key_source, public_key_source
from relayops.policyd.notices import TEMPLATE_FIELDS
from relayops.policyd.store_url import parse_shared_counters

REDIS_DEFAULT_DATABASES = 16  # redis.conf `databases`, which the deploy leaves as it is


@dataclass(frozen=True)
class Violation:
    file: str  # repository-relative path
    path: tuple[str | int, ...]
    message: str
    value: object = None


def customer_file(customer_id: str) -> str:
    return f"customers/{customer_id}.yaml"


def _shared(
    claims: Sequence[tuple[str, str, tuple[str | int, ...]]], what: str, rule: str
) -> Iterator[Violation]:
    """Report every claim on a value also claimed by another customer, naming the others.

    Both sides are reported: which one is wrong is for the reviewer to decide.
    """
    owners: dict[str, set[str]] = {}
    for value, cid, _path in claims:
        owners.setdefault(value, set()).add(cid)
    for value, cid, path in claims:
        others = sorted(owners[value] - {cid})
        if others:
            names = ", ".join(f"'{o}' ({customer_file(o)})" for o in others)
            yield Violation(customer_file(cid), path, f"{what} {names}; {rule}", value)


def unique_domains(customers: dict[str, Customer]) -> Iterator[Violation]:
    claims = [
        (domain.name, cid, ("domains", i, "name"))
        for cid, customer in customers.items()
        for i, domain in enumerate(customer.domains)
    ]
    return _shared(
        claims, "domain also belongs to customer", "a domain belongs to one customer only"
    )


def unique_logins(customers: dict[str, Customer]) -> Iterator[Violation]:
    claims = [
        (user.login, cid, ("users", i, "login"))
        for cid, customer in customers.items()
        for i, user in enumerate(customer.users)
    ]
    return _shared(claims, "login also used by customer", "a login is unique across customers")


def plan_rules(customers: dict[str, Customer], plans: dict[str, Plan]) -> Iterator[Violation]:
    for cid in sorted(customers):
        customer = customers[cid]
        plan = plans.get(customer.plan)
        if plan is None:
            yield Violation(
                customer_file(cid),
                ("plan",),
                f"unknown plan; plans in policies/plans.yaml: {', '.join(sorted(plans))}",
                customer.plan,
            )
            continue
        if customer.quota_override is not None and customer.quota_override > plan.quota_ceiling:
            yield Violation(
                customer_file(cid),
                ("quota_override",),
                f"exceeds plan '{customer.plan}' ceiling of {plan.quota_ceiling} per day "
                "(raise max_daily_quota or change the plan)",
                customer.quota_override,
            )
        if customer.placement.dedicated_ip is not None and not plan.dedicated_ip:
            yield Violation(
                customer_file(cid),
                ("placement", "dedicated_ip"),
                f"plan '{customer.plan}' does not include a dedicated IP",
                customer.placement.dedicated_ip,
            )


def throttling_rules(classes: dict[str, IspClass]) -> Iterator[Violation]:
    """A destination domain belongs to one class: Postfix's transport table would keep the
    first entry for it and only log a warning, so the other class silently never applies."""
    owners: dict[str, list[str]] = {}
    for name, cls in classes.items():
        for domain in cls.domains:
            owners.setdefault(domain.lower(), []).append(name)
    for name, cls in classes.items():
        for i, domain in enumerate(cls.domains):
            others = [o for o in owners[domain.lower()] if o != name]
            if others:
                yield Violation(
                    "policies/throttling.yaml",
                    ("classes", name, "domains", i),
                    f"domain also in class {', '.join(others)}; a destination domain belongs "
                    "to one class",
                    domain,
                )


def warmup_rules(
    customers: dict[str, Customer], schedules: dict[str, WarmupSchedule], classes: set[str]
) -> Iterator[Violation]:
    for cid in sorted(customers):
        ref = customers[cid].warmup
        if ref is not None and ref.schedule not in schedules:
            yield Violation(
                customer_file(cid),
                ("warmup", "schedule"),
                f"unknown warm-up schedule; defined: {', '.join(sorted(schedules)) or 'none'}",
                ref.schedule,
            )
        elif ref is not None and ref.stage is not None:
            count = len(schedules[ref.schedule].stages)
            if ref.stage > count:
                yield Violation(
                    customer_file(cid),
                    ("warmup", "stage"),
                    f"schedule {ref.schedule} has {count} stages (1 to {count})",
                    ref.stage,
                )
    for name in sorted(schedules):
        for s, stage in enumerate(schedules[name].stages):
            for isp in sorted(stage.isp_caps):
                if isp not in classes:
                    yield Violation(
                        "policies/warmup.yaml",
                        ("schedules", name, "stages", s, "isp_caps", isp),
                        "unknown throttling class; classes in policies/throttling.yaml: "
                        + (", ".join(sorted(classes)) or "none"),
                        isp,
                    )


def placement_rules(customers: dict[str, Customer], inventory: Inventory) -> Iterator[Violation]:
    """Pools and IPs exist in the inventory; a dedicated IP serves one customer at a time.

    The year's quarantine of a released IP is `quarantine.quarantine_rules`.
    """
    pools = inventory.pools()
    holders: list[tuple[str, str, tuple[str | int, ...]]] = []
    for cid in sorted(customers):
        customer = customers[cid]
        placement = customer.placement
        if placement.pool is not None and placement.pool not in pools:
            yield Violation(
                customer_file(cid),
                ("placement", "pool"),
                f"no pool of that name in {inventory.path.name}; pools: "
                + (", ".join(sorted(pools)) or "none"),
                placement.pool,
            )
        name = placement.dedicated_ip
        if name is None:
            continue
        found = inventory.ip(name)
        if found is None:
            yield Violation(
                customer_file(cid),
                ("placement", "dedicated_ip"),
                f"no IP of that name in {inventory.path.name}",
                name,
            )
            continue
        if not found[1].dedicated:
            yield Violation(
                customer_file(cid),
                ("placement", "dedicated_ip"),
                f"IP '{name}' is in pool '{found[1].pool}' in {inventory.path.name}, "
                "not marked 'dedicated'",
                name,
            )
        if customer.status is Status.TERMINATED:
            continue
        holders.append((name, cid, ("placement", "dedicated_ip")))
    yield from _shared(
        holders, "dedicated IP also serves customer", "a dedicated IP serves one customer"
    )


def inventory_rules(inventory: Inventory, file: str) -> Iterator[Violation]:
    names: set[str] = set()
    addresses: set[str] = set()
    hosts: set[str] = set()
    for h, host in enumerate(inventory.hosts):
        if host.name in hosts:
            # pyinfra would run the deploy twice on it, each time with one of the two data.
            yield Violation(file, ("relays", h), "host listed twice", host.name)
        hosts.add(host.name)
        for i, ip in enumerate(host.ips):
            where = ("relays", h, "relayops_ips", i)
            if ip.name in names:
                yield Violation(file, (*where, "name"), "IP name used twice", ip.name)
            if str(ip.address) in addresses:
                yield Violation(file, (*where, "address"), "address used twice", str(ip.address))
            names.add(ip.name)
            addresses.add(str(ip.address))


def notification_rules(notifications: dict[str, Notification]) -> Iterator[Violation]:
    for kind in sorted(notifications):
        note = notifications[kind]
        for part in ("subject", "body"):
            text = getattr(note, part)
            known = TEMPLATE_FIELDS.get(kind, frozenset())
            for match in string.Template.pattern.finditer(text):
                named = match.group("named") or match.group("braced")
                if match.group("invalid") is not None or (named is not None and named not in known):
                    yield Violation(
                        f"policies/notifications/{kind}.txt",
                        (),
                        f"unknown placeholder in {part}; known: "
                        + ", ".join("$" + f for f in sorted(known)),
                        match.group(0),
                    )


def counters_rules(
    customers: dict[str, Customer], inventory: Inventory, file: str
) -> Iterator[Violation]:
    """Quotas hold across relays only when the relays count in one store.

    A pool on several relays lets its customers' mail leave from each of them; with
    per-host counters each relay would grant the whole daily quota. And a counters
    Redis the deploy runs on a relay is plain Redis: no TLS, no Sentinel.
    """
    if inventory.shared_counters is None:
        for pool in sorted(inventory.pools()):
            relays = inventory.pool_hosts(pool)
            if len(relays) < 2:
                continue
            second = inventory.hosts.index(relays[1])
            i = next(n for n, ip in enumerate(relays[1].ips) if ip.pool == pool)
            users = sorted(c for c, v in customers.items() if v.placement.pool == pool and v.sends)
            yield Violation(
                file,
                ("relays", second, "relayops_ips", i, "pool"),
                f"pool '{pool}' sends from {len(relays)} relays "
                f"({', '.join(r.name for r in relays)}) that count quotas each on its own: "
                f"its customers ({', '.join(users) or 'none yet'}) could send "
                f"{len(relays)}x their daily quota; set relayops_shared_counters "
                '(e.g. "redis://HOST:6379/0") in the relays group data',
                pool,
            )
        return
    url = parse_shared_counters(inventory.shared_counters)
    addresses = {
        address: relay.name
        for relay in inventory.hosts
        for address in (relay.ssh_hostname, *(str(ip.address) for ip in relay.ips))
    }
    on_relay = [addresses[host] for host, _ in url.hosts if host in addresses]
    if on_relay and url.db > REDIS_DEFAULT_DATABASES - 1:
        yield Violation(
            file,
            ("relayops_shared_counters",),
            f"database {url.db} on relay {on_relay[0]}: the Redis the deploy runs there has "
            f"databases 0 to {REDIS_DEFAULT_DATABASES - 1} (Debian's default)",
            inventory.shared_counters,
        )


def identity_rules(inventory: Inventory, file: str, root: Path) -> Iterator[Violation]:
    """An age identity the inventory names must exist, or its deploy stops at the first key."""
    if inventory.age_identity is None:
        return
    given = Path(inventory.age_identity)
    path = given if given.is_absolute() else root / given
    if not path.is_file():
        yield Violation(
            file,
            ("relayops_age_identity",),
            f"no such file {path}; name the age identity that decrypts secrets/ "
            "(or leave it unset and set RELAYOPS_AGE_IDENTITY when deploying)",
            inventory.age_identity,
        )


def dkim_key_rules(
    customers: dict[str, Customer], exists: Callable[[str], bool]
) -> Iterator[Violation]:
    """Every domain a relay signs for has its key pair under secrets/ (else the deploy stops)."""
    for cid in sorted(customers):
        customer = customers[cid]
        if not customer.sends:
            continue
        for d, domain in enumerate(customer.domains):
            # Every published selector: the signing one, and during a rotation the next
            # (published before it signs) or the previous one (published until retired).
            dkim = domain.dkim
            places: list[tuple[tuple[str | int, ...], str]] = [
                (("domains", d, "dkim", "selector"), dkim.selector)
            ]
            if dkim.next is not None:
                places.append((("domains", d, "dkim", "next", "selector"), dkim.next.selector))
            if dkim.previous is not None:
                places.append(
                    (("domains", d, "dkim", "previous", "selector"), dkim.previous.selector)
                )
            for path, selector in places:
                missing = [
                    rel
                    for rel in (
                        encrypted_key_source(domain.name, selector),
                        public_key_source(domain.name, selector),
                    )
                    if not exists(rel)  # on disk, or in a change being validated
                ]
                if missing:
                    yield Violation(
                        customer_file(cid),
                        path,
                        f"no DKIM key {' and '.join(missing)}; run `relayops dkim generate "
                        f"{domain.name} --selector {selector}`",
                        selector,
                    )
