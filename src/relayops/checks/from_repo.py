"""Build the checks' targets from the policy repository and one of its inventories.

What the outside must see follows from the repository: each active customer's
sender domains, the addresses their mail leaves from (compile/placement.py, the
same the compiler routes by), their DKIM public keys under secrets/, the largest
plan's SIZE, the service domain's MX (the relays), and the inventory's DNSBLs.
"""

from __future__ import annotations

from pathlib import Path

import yaml

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
from relayops.compile.placement import sending_addresses
from relayops.model import Repo, Status

LAB_CREDENTIALS = Path("lab/credentials.lab-only.yaml")


def targets_from_repo(
    repo: Repo,
    inventory_name: str,
    *,
    credentials: dict[str, str] | None = None,
    ca_bundle: str | None = None,
) -> CheckTarget:
    """The CheckTarget for `inventory_name` ("production", "lab").

    `credentials` (login → password) enables the sender-binding probe: the first
    active customer with a known password tries to send from another customer's domain.
    """
    inventory = repo.inventories.get(inventory_name)
    if inventory is None:
        known = ", ".join(sorted(repo.inventories))
        raise CheckInputError(f"no inventory {inventory_name!r}; known: {known}")
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
            public = key_files(repo.root, domain.name, domain.dkim.selector).public_pem
            keys: tuple[DkimKey, ...] = ()
            if public.exists():
                keys = (DkimKey(domain.dkim.selector, public.read_text(encoding="ascii")),)
            domains.append(SenderDomain(domain.name, customer.id, addresses, keys))
    logins: list[SenderLogin] = []
    if credentials:
        for customer in active:
            others = [c for c in active if c.id != customer.id]
            user = next((u for u in customer.users if u.login in credentials), None)
            if user is not None and others:
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
    )


def read_credentials(path: Path) -> dict[str, str]:
    """login → password from a YAML mapping (the lab's credentials file)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CheckInputError(f"cannot read credentials {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckInputError(f"{path} must map logins to passwords")
    return {str(k): str(v) for k, v in data.items()}
