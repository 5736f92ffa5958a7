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
  IP needs (the output instance splits recipients by class);
* `transport_maps` carries only the feedback addresses (bounces, complaint reports) to
  the `relayops feedback ingest` pipe; a FILTER wins over it, but submission never
  carries mail to those addresses (they arrive on port 25).
"""

from __future__ import annotations

from dataclasses import dataclass

from relayops.compile.files import Daemon, ManagedFile, MapCommand
from relayops.compile.instances import HANDOFF_TRANSPORT, instance_for, output_instances
from relayops.compile.mailbox import MAILBOX_DOMAIN, mailbox_address, mailbox_customers
from relayops.compile.placement import default_egress, served
from relayops.compile.templates import Templates
from relayops.hostlayout import DKIM_MILTER_POSTFIX as DKIM_MILTER
from relayops.hostlayout import LMTP_PATH, POLICY_SERVICE, SASL_PATH, TLS_CERT, TLS_KEY, VENV
from relayops.hostlayout import MESSAGE_MILTER_POSTFIX as MESSAGE_MILTER
from relayops.model import IspClass, RelayHost, Repo

MAP_TYPE = "hash"  # built into Debian 12's Postfix (lmdb needs the postfix-lmdb package)
SENDER_LOGINS = "/etc/postfix/sender_logins"
SENDER_EGRESS = "/etc/postfix/sender_egress"
# The submission instance's transport_maps: the feedback addresses only (ISP classes are
# transports of the output instances, compile/instances.py).
TRANSPORT = "/etc/postfix/transport"
ALIASES = "/etc/postfix/aliases"
# Bounces to bounces@<service domain> and feedback-loop reports to service.yaml's
# feedback_address go to `relayops feedback ingest` through a pipe(8) transport
# (docs/feedback.md).
BOUNCES_LOCAL = "bounces"
FEEDBACK_TRANSPORT = "relayops-feedback"
RELAYOPS_BIN = f"{VENV}/bin/relayops"  # the relay wheel's entry point (relayops/relay_cli.py)
MAILBOXES = "/etc/postfix/mailboxes"  # virtual_mailbox_maps: the customers' notice mailboxes
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


def feedback_addresses(repo: Repo) -> list[str]:
    """Where bounces and feedback-loop reports reach the service: the ingester's inputs."""
    service = repo.service
    return sorted({f"{BOUNCES_LOCAL}@{service.domain}", service.feedback_address.lower()})


def transport_rows(repo: Repo) -> list[tuple[str, str]]:
    """`address  relayops-feedback:`: the ingester's inputs, before local(8) would see them."""
    return [(address, f"{FEEDBACK_TRANSPORT}:") for address in feedback_addresses(repo)]


def alias_rows(repo: Repo) -> list[tuple[str, str]]:
    """Role accounts of the service domain, delivered to root's local mailbox.

    notify_from takes the bounces of notices, feedback_address the receivers' complaint
    reports: both must be accepted on port 25 (reject_unlisted_recipient) until the
    feedback ingestion reads them from there.
    """
    service = repo.service
    local_parts = set(_ROLE_ACCOUNTS)
    # The feedback addresses must be known local recipients (reject_unlisted_recipient);
    # transport_maps sends their mail to the ingester before local(8) would see it.
    for address in (
        service.postmaster,
        service.abuse,
        service.notify_from,
        *feedback_addresses(repo),
    ):
        local, _, domain = address.rpartition("@")
        if domain == service.domain:
            local_parts.add(local.lower())
    return [(f"{local}:", "root") for local in sorted(local_parts)]


def mailbox_rows(repo: Repo, host: RelayHost) -> list[tuple[str, str]]:
    """`<customer>@mailbox-domain  <customer>/`: the addresses Postfix accepts for LMTP."""
    return [(mailbox_address(cid), f"{cid}/") for cid in mailbox_customers(repo, host)]


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
        message_milter=MESSAGE_MILTER,
        sasl_path=SASL_PATH,
        tls_cert=TLS_CERT,
        tls_key=TLS_KEY,
        sender_logins=SENDER_LOGINS,
        sender_egress=SENDER_EGRESS,
        transport_map=TRANSPORT,
        aliases=ALIASES,
        mailbox_domain=MAILBOX_DOMAIN,
        mailboxes=MAILBOXES,
        lmtp_path=LMTP_PATH,
        # Only local processes may write into a customer's mailbox (see main.cf).
        mailbox_guard=f"inline:{{ {MAILBOX_DOMAIN}=relayops_local_only }}",
        mailbox_closed=(
            f"inline:{{ {{ {MAILBOX_DOMAIN} = REJECT notice mailboxes take mail from the relay "
            "only } }"
        ),
    )


def master_cf(repo: Repo, host: RelayHost, templates: Templates, *, store: list[str]) -> bytes:
    return templates.render(
        "/etc/postfix/master.cf",
        transports=transports(host, repo.throttling),
        feedback_transport=FEEDBACK_TRANSPORT,
        feedback_command=" ".join([RELAYOPS_BIN, "feedback", "ingest", *store]),
    )


def postfix_files(
    repo: Repo, host: RelayHost, templates: Templates, *, store: list[str]
) -> list[ManagedFile]:
    """`store`: the daemon's --store arguments, which the feedback ingester shares."""

    def conf(path: str, content: bytes) -> ManagedFile:
        return ManagedFile(path, content, 0o644, "root", "root", Daemon.POSTFIX)

    def table(path: str, content: bytes, command: MapCommand = MapCommand.POSTMAP) -> ManagedFile:
        return ManagedFile(path, content, 0o644, "root", "root", Daemon.POSTFIX, command)

    return [
        conf("/etc/postfix/main.cf", main_cf(repo, host, templates)),
        conf("/etc/postfix/master.cf", master_cf(repo, host, templates, store=store)),
        table(SENDER_LOGINS, templates.render(SENDER_LOGINS, rows=sender_login_rows(repo, host))),
        table(SENDER_EGRESS, templates.render(SENDER_EGRESS, rows=sender_egress_rows(repo, host))),
        table(TRANSPORT, templates.render(TRANSPORT, rows=transport_rows(repo))),
        table(ALIASES, templates.render(ALIASES, rows=alias_rows(repo)), MapCommand.POSTALIAS),
        table(MAILBOXES, templates.render(MAILBOXES, rows=mailbox_rows(repo, host))),
    ]
