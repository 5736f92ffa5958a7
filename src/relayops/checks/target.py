"""Plain typed inputs of the checks engine, independent of how the repository is modelled.

`relayops.loader` builds these from customers/, policies/ and inventory/; until that is
wired, `relayops check --inventory targets.json` reads them from a JSON file
(`load_targets`), whose shape is documented in docs/checks.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pydantic

from relayops.checks.result import CheckInputError


@dataclass(frozen=True, slots=True)
class Ports:
    """Where each service listens (production: the standard ports)."""

    smtp: int = 25
    submission: int = 587
    submissions: int = 465
    imaps: int = 993


@dataclass(frozen=True, slots=True)
class RelayIp:
    """One sending address of a host and the HELO name its transport announces (= its PTR)."""

    address: str
    helo: str


@dataclass(frozen=True, slots=True)
class HostTarget:
    """A relay host as the outside sees it: the name in its certificate, its sending IPs,
    and the address the probes connect to (defaults to the first sending IP)."""

    fqdn: str
    ips: tuple[RelayIp, ...]
    connect: str | None = None
    ports: Ports = field(default_factory=Ports)

    @property
    def connect_address(self) -> str:
        if self.connect:
            return self.connect
        if not self.ips:
            raise CheckInputError(f"host {self.fqdn} has no IP: give it ips or connect")
        return self.ips[0].address


@dataclass(frozen=True, slots=True)
class DkimKey:
    selector: str
    public_key_pem: str


@dataclass(frozen=True, slots=True)
class SenderDomain:
    """A customer's sender domain and the relay IPs that send its mail."""

    name: str
    customer: str
    relay_ips: tuple[str, ...]
    dkim: tuple[DkimKey, ...] = ()
    # The record the operator tells the customer to publish (`relayops plan`), quoted in
    # the advice; None for a JSON target: the advice then lists the relay IPs.
    spf: str | None = None


@dataclass(frozen=True, slots=True)
class SenderLogin:
    """A customer login used to prove that it may only send from its own domains."""

    customer: str
    username: str
    password: str = field(repr=False)
    own_domain: str
    foreign_domain: str


@dataclass(frozen=True, slots=True)
class DnsblZone:
    """A blocklist zone: `ip` zones are queried by reversed IPv4 octets, `domain` zones by
    name. `refusal_codes` are answers that mean "query refused", not "listed"."""

    zone: str
    kind: Literal["ip", "domain"] = "ip"
    refusal_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckTarget:
    service_domain: str
    hosts: tuple[HostTarget, ...] = ()
    sender_domains: tuple[SenderDomain, ...] = ()
    expected_size: int | None = None
    expected_mx: tuple[str, ...] = ()
    dnsbl_zones: tuple[DnsblZone, ...] = ()
    ca_bundle: str | None = None
    logins: tuple[SenderLogin, ...] = ()
    # The service domain's own mail (notices, bounces): checked like a sender domain.
    service_mail: SenderDomain | None = None
    # RFC 2606 name: never a real mailbox, and no DATA is ever sent to it.
    probe_recipient: str = "relay-probe@example.com"

    def for_customer(self, customer: str) -> CheckTarget:
        """Only `customer`'s domains and logins (hosts and the service domain stay)."""
        domains = tuple(d for d in self.sender_domains if d.customer == customer)
        logins = tuple(x for x in self.logins if x.customer == customer)
        if not domains and not logins:
            known = sorted({d.customer for d in self.sender_domains})
            raise CheckInputError(
                f"no sender domain or login for customer {customer!r}; known: {', '.join(known)}"
            )
        return replace(self, sender_domains=domains, logins=logins)


_ADAPTER = pydantic.TypeAdapter(CheckTarget)


def _resolve_indirections(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Read `public_key_file` (relative to the JSON file) and `password_env` entries, so that
    neither keys nor passwords need to be pasted into the targets file."""
    for domain in data.get("sender_domains", []):
        for key in domain.get("dkim", []):
            if "public_key_file" in key:
                key["public_key_pem"] = (base / key.pop("public_key_file")).read_text()
    for login in data.get("logins", []):
        if "password_env" in login:
            name = login.pop("password_env")
            if name not in os.environ:
                raise CheckInputError(f"login {login.get('username')}: set ${name}")
            login["password"] = os.environ[name]
    return data


def parse_targets(data: Any, *, base: Path = Path(".")) -> CheckTarget:
    """Validate a JSON-shaped dict into a `CheckTarget`; errors name the field path."""
    if not isinstance(data, dict):
        raise CheckInputError("targets must be a JSON object with service_domain, hosts, ...")
    try:
        return _ADAPTER.validate_python(_resolve_indirections(data, base))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise CheckInputError(f"invalid targets: {problems}") from exc
    except OSError as exc:
        raise CheckInputError(f"cannot read a file named in the targets: {exc}") from exc


def load_targets(path: Path) -> CheckTarget:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckInputError(f"cannot read targets file {path}: {exc}") from exc
    return parse_targets(data, base=path.parent)
