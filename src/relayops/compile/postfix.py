"""Postfix: main.cf, master.cf and the lookup tables, computed for one relay host.

This is the submission (default) instance: it takes mail on 587/465/25, signs it and
hands each message, by sender, to the output instance of the customer's sending IP
(compile/instances.py, docs/throttling.md), which binds to that IP and throttles per
ISP class:

* the host's default egress (its first pool) is `default_transport`: its customers,
  DSNs and notices go to that egress's instance;
* every other egress (a dedicated IP, another pool) is chosen per message by a
  `FILTER relayops-handoff:[127.0.0.1]:<port>` from the sender-domain table
  `sender_egress`; a FILTER moves the whole message, which is what a sender-chosen
  IP needs (the output instance splits recipients by class).
"""

from __future__ import annotations

from dataclasses import dataclass

from relayops.compile.files import Daemon, ManagedFile, MapCommand
from relayops.compile.instances import HANDOFF_TRANSPORT, instance_for, output_instances
from relayops.compile.placement import default_egress, served
from relayops.compile.templates import Templates
from relayops.hostlayout import DKIM_MILTER_POSTFIX as DKIM_MILTER
from relayops.hostlayout import POLICY_SERVICE, SASL_PATH, TLS_CERT, TLS_KEY
from relayops.model import IspClass, RelayHost, Repo

MAP_TYPE = "hash"  # built into Debian 12's Postfix (lmdb needs the postfix-lmdb package)
SENDER_LOGINS = "/etc/postfix/sender_logins"
SENDER_EGRESS = "/etc/postfix/sender_egress"
ALIASES = "/etc/postfix/aliases"
# Local parts of the service's own domain that always exist (RFC 5321 4.5.1, RFC 2142).
_ROLE_ACCOUNTS = ("abuse", "mailer-daemon", "postmaster")


@dataclass(frozen=True)
class Transport:
    name: str
    bind_address: str | None  # None: the kernel's choice (loopback for the handoff)
    helo_name: str | None


def transports(host: RelayHost, classes: dict[str, IspClass]) -> list[Transport]:
    """The submission instance's own smtp(8) transports: the handoff to the output instances.

    Bound transports and ISP classes live in the output instances (compile/instances.py).
    """
    del host, classes  # the same for every host; kept for the callers' signature
    return [Transport(HANDOFF_TRANSPORT, None, None)]


def sender_login_rows(repo: Repo, host: RelayHost) -> list[tuple[str, str]]:
    """`@domain  login,login`: any local part of the domain, only the owner's logins.

    Suspended and terminated customers are absent, so reject_sender_login_mismatch
    refuses their domains even if a login were still known to SASL.
    """
    rows: list[tuple[str, str]] = []
    for customer, _ in served(repo.customers, host):
        if not customer.sends:
            continue
        logins = ",".join(sorted(u.login for u in customer.users))
        rows.extend((f"@{d.name}", logins) for d in customer.domains)
    return sorted(rows)


def sender_egress_rows(repo: Repo, host: RelayHost) -> list[tuple[str, str]]:
    """`domain  FILTER relayops-handoff:[127.0.0.1]:port`: customers off the default egress."""
    default = default_egress(host)
    handoffs = {i.egress: i.handoff for i in output_instances(host)}  # once per host
    rows: list[tuple[str, str]] = []
    for customer, egress in served(repo.customers, host):
        if customer.sends and egress != default:
            rows.extend((d.name, f"FILTER {handoffs[egress]}") for d in customer.domains)
    return sorted(rows)


def alias_rows(repo: Repo) -> list[tuple[str, str]]:
    """Role accounts of the service domain, delivered to root's local mailbox.

    notify_from takes the bounces of notices, feedback_address the receivers' complaint
    reports: both must be accepted on port 25 (reject_unlisted_recipient) until the
    feedback ingestion reads them from there.
    """
    service = repo.service
    local_parts = set(_ROLE_ACCOUNTS)
    for address in (
        service.postmaster,
        service.abuse,
        service.notify_from,
        service.feedback_address,
    ):
        local, _, domain = address.rpartition("@")
        if domain == service.domain:
            local_parts.add(local.lower())
    return [(f"{local}:", "root") for local in sorted(local_parts)]


def message_size_limit(repo: Repo) -> int:
    """The largest plan's limit; policyd refuses what exceeds the customer's own plan."""
    return max(plan.max_message_bytes for plan in repo.plans.values())


def main_cf(repo: Repo, host: RelayHost, templates: Templates) -> bytes:
    return templates.render(
        "/etc/postfix/main.cf",
        myhostname=host.fqdn,
        service_domain=repo.service.domain,
        message_size_limit=message_size_limit(repo),
        default_transport=instance_for(host, default_egress(host)).handoff,
        instances=output_instances(host),
        map_type=MAP_TYPE,
        policy_service=POLICY_SERVICE,
        dkim_milter=DKIM_MILTER,
        sasl_path=SASL_PATH,
        tls_cert=TLS_CERT,
        tls_key=TLS_KEY,
        sender_logins=SENDER_LOGINS,
        sender_egress=SENDER_EGRESS,
        aliases=ALIASES,
    )


def master_cf(repo: Repo, host: RelayHost, templates: Templates) -> bytes:
    return templates.render("/etc/postfix/master.cf", transports=transports(host, repo.throttling))


def postfix_files(repo: Repo, host: RelayHost, templates: Templates) -> list[ManagedFile]:
    def conf(path: str, content: bytes) -> ManagedFile:
        return ManagedFile(path, content, 0o644, "root", "root", Daemon.POSTFIX)

    def table(path: str, content: bytes, command: MapCommand = MapCommand.POSTMAP) -> ManagedFile:
        return ManagedFile(path, content, 0o644, "root", "root", Daemon.POSTFIX, command)

    return [
        conf("/etc/postfix/main.cf", main_cf(repo, host, templates)),
        conf("/etc/postfix/master.cf", master_cf(repo, host, templates)),
        table(SENDER_LOGINS, templates.render(SENDER_LOGINS, rows=sender_login_rows(repo, host))),
        table(SENDER_EGRESS, templates.render(SENDER_EGRESS, rows=sender_egress_rows(repo, host))),
        table(ALIASES, templates.render(ALIASES, rows=alias_rows(repo)), MapCommand.POSTALIAS),
    ]
