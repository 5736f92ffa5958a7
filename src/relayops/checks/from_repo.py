"""Build the checks' targets from the policy repository and one of its inventories.

What the outside must see follows from the repository: each active customer's
sender domains, the addresses their mail leaves from (compile/placement.py, the
same the compiler routes by), their DKIM public keys under secrets/, the largest
plan's SIZE, the service domain's MX (the relays), and the inventory's DNSBLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relayops.checks.result import CheckInputError
from relayops.checks.target import (
    CheckTarget,
    DkimKey,
    DnsblZone,
    HostTarget,
    RelayIp,
    SenderDomain,
    SenderLogin,
)
from relayops.compile.dkim import key_files
from relayops.compile.dns_records import service_addresses, service_spf, spf_record
from relayops.compile.placement import sending_addresses
from relayops.model import Inventory, Repo, Status
from relayops.yamlfile import YamlError, parse

LAB_CREDENTIALS = Path("lab/credentials.lab-only.yaml")


@dataclass(frozen=True, slots=True)
class CheckDefaults:
    """What an inventory says about checking it: the CA its certificates chain to (the lab's
    private CA) and the DNS server that serves its zones (the lab's NSD). None: the
    system's store and resolvers, as in production."""

    ca_bundle: Path | None = None
    nameserver: str | None = None


def check_defaults(inventory: Inventory, repo_root: Path) -> CheckDefaults:
    """`relayops_ca_bundle` (relative to the repository root unless absolute) and
    `relayops_check_nameserver`, as the loader read them (model/inventory.py)."""
    ca_bundle = None
    if inventory.ca_bundle:
        given = Path(inventory.ca_bundle)
        ca_bundle = given if given.is_absolute() else repo_root / given
    return CheckDefaults(ca_bundle=ca_bundle, nameserver=inventory.check_nameserver)


def _keys(repo: Repo, domain: str, selectors: tuple[str, ...]) -> tuple[DkimKey, ...]:
    """The published selectors' public keys that exist under secrets/."""
    keys: list[DkimKey] = []
    for selector in selectors:
        public = key_files(repo.root, domain, selector).public_pem
        if public.exists():
            keys.append(DkimKey(selector, public.read_text(encoding="ascii")))
    return tuple(keys)


def targets_from_repo(
    repo: Repo,
    inventory: Inventory,
    *,
    credentials: dict[str, str] | None = None,
    ca_bundle: str | None = None,
) -> CheckTarget:
    """The CheckTarget for one of the repository's inventories.

    `credentials` (login → password) enables the sender-binding probe: the first
    active customer with a known password tries to send from another customer's domain.
    """
    hosts = tuple(
        HostTarget(
            fqdn=host.fqdn,
            ips=tuple(RelayIp(str(ip.address), ip.ptr) for ip in host.ips),
            connect=host.ssh_hostname,
        )
        for host in inventory.hosts
    )
    domains: list[SenderDomain] = []
    active = [repo.customers[c] for c in sorted(repo.customers)]
    active = [c for c in active if c.status is Status.ACTIVE]
    for customer in active:
        addresses = tuple(str(a) for a in sending_addresses(inventory, customer))
        for domain in customer.domains:
            keys = _keys(repo, domain.name, domain.dkim.published)
            advice = spf_record(customer, inventory, repo.service)
            domains.append(SenderDomain(domain.name, customer.id, addresses, tuple(keys), advice))
    service = repo.service
    service_mail = SenderDomain(
        service.domain,
        "",
        tuple(service_addresses(inventory)),
        _keys(repo, service.domain, service.dkim.published),
        service_spf(inventory),
    )
    logins: list[SenderLogin] = []
    if credentials:
        for customer in active:
            # a customer being onboarded may have no domain yet: it cannot take part
            others = [c for c in active if c.id != customer.id and c.domains]
            user = next((u for u in customer.users if u.login in credentials), None)
            if user is not None and others and customer.domains:
                logins.append(
                    SenderLogin(
                        customer=customer.id,
                        username=user.login,
                        password=credentials[user.login],
                        own_domain=customer.domains[0].name,
                        foreign_domain=others[0].domains[0].name,
                    )
                )
                break
    return CheckTarget(
        service_domain=repo.service.domain,
        hosts=hosts,
        sender_domains=tuple(domains),
        expected_size=max(plan.max_message_bytes for plan in repo.plans.values()),
        expected_mx=tuple(sorted(host.fqdn for host in inventory.hosts)),
        dnsbl_zones=tuple(
            DnsblZone(z.zone, z.kind, tuple(z.refusal_codes)) for z in inventory.dnsbl_zones
        ),
        ca_bundle=ca_bundle,
        logins=tuple(logins),
        service_mail=service_mail,
    )


def read_credentials(path: Path) -> dict[str, str]:
    """login → password from a YAML mapping (the lab's credentials file).

    Read with the project's YAML reader, so a login listed twice is an error, not
    silently the last password.
    """
    try:
        data = parse(path.read_bytes()).value
    except OSError as exc:
        raise CheckInputError(f"cannot read credentials {path}: {exc.strerror}") from exc
    except YamlError as exc:
        raise CheckInputError(f"{path}:{exc.line}:{exc.column}: {exc.message}") from exc
    if not isinstance(data, dict):
        raise CheckInputError(f"{path} must map logins to passwords")
    return {str(k): str(v) for k, v in data.items()}
