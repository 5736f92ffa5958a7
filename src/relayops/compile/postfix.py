"""Postfix: main.cf, master.cf and the lookup tables, computed for one relay host.

Routing (why FILTER and not only sender_dependent_default_transport_maps):
`transport_maps` wins over `sender_dependent_default_transport_maps`, so a
per-ISP transport for gmail.com would send a dedicated-IP customer's Gmail mail
out of the shared pool. Instead:

* the host's default egress (its first pool) is `default_transport`, and the
  ISP classes of policies/throttling.yaml are transports *of that egress*,
  chosen by recipient domain through `transport_maps`;
* every other egress (a dedicated IP, another pool) is chosen per message by a
  `FILTER <transport>:` from the sender-domain table `sender_egress`. A FILTER
  takes precedence over transport_maps and, with an empty next hop, delivers to
  the recipient domain (Postfix >= 2.7, postconf(5) content_filter). Those
  transports cannot tell ISPs apart, so they carry the strictest class limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from relayops.compile.files import Daemon, ManagedFile, MapCommand
from relayops.compile.mailbox import MAILBOX_DOMAIN, mailbox_address, mailbox_customers
from relayops.compile.placement import Egress, default_egress, host_egresses, served
from relayops.compile.templates import Templates
from relayops.hostlayout import DKIM_MILTER_POSTFIX as DKIM_MILTER
from relayops.hostlayout import LMTP_PATH, POLICY_SERVICE, SASL_PATH, TLS_CERT, TLS_KEY, VENV
from relayops.hostlayout import MESSAGE_MILTER_POSTFIX as MESSAGE_MILTER
from relayops.model import IspClass, RelayHost, Repo

MAP_TYPE = "hash"  # built into Debian 12's Postfix (lmdb needs the postfix-lmdb package)
SENDER_LOGINS = "/etc/postfix/sender_logins"
SENDER_EGRESS = "/etc/postfix/sender_egress"
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
    bind_address: str
    helo_name: str
    concurrency: int | None  # None: Postfix's default_destination_concurrency_limit
    rate_delay_seconds: int | None


def _strictest(classes: dict[str, IspClass]) -> tuple[int | None, int | None]:
    if not classes:
        return None, None
    return (
        min(c.concurrency for c in classes.values()),
        max(c.rate_delay_seconds for c in classes.values()),
    )


def transports(host: RelayHost, classes: dict[str, IspClass]) -> list[Transport]:
    """Every smtp(8) transport of the host, sorted by name."""
    default = default_egress(host)
    strict_concurrency, strict_delay = _strictest(classes)
    result: list[Transport] = []
    for egress in host_egresses(host):
        address, helo = str(egress.ip.address), egress.ip.ptr
        if egress == default:
            result.append(Transport(egress.transport, address, helo, None, None))
            for name in sorted(classes):
                cls = classes[name]
                result.append(
                    Transport(
                        class_transport(egress, name),
                        address,
                        helo,
                        cls.concurrency,
                        cls.rate_delay_seconds,
                    )
                )
        else:
            result.append(
                Transport(egress.transport, address, helo, strict_concurrency, strict_delay)
            )
    return sorted(result, key=lambda t: t.name)


def class_transport(egress: Egress, class_name: str) -> str:
    return f"{egress.transport}-{class_name}"


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
    """`domain  FILTER ip-x:` for active customers not on the host's default egress."""
    default = default_egress(host)
    rows: list[tuple[str, str]] = []
    for customer, egress in served(repo.customers, host):
        if customer.sends and egress != default:
            rows.extend((d.name, f"FILTER {egress.transport}:") for d in customer.domains)
    return sorted(rows)


def feedback_addresses(repo: Repo) -> list[str]:
    """Where bounces and feedback-loop reports reach the service: the ingester's inputs."""
    service = repo.service
    return sorted({f"{BOUNCES_LOCAL}@{service.domain}", service.feedback_address.lower()})


def transport_rows(repo: Repo, host: RelayHost) -> list[tuple[str, str]]:
    default = default_egress(host)
    rows: list[tuple[str, str]] = [
        (address, f"{FEEDBACK_TRANSPORT}:") for address in feedback_addresses(repo)
    ]
    for name, cls in repo.throttling.items():
        rows.extend((domain, f"{class_transport(default, name)}:") for domain in cls.domains)
    return sorted(rows)


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
        default_transport=default_egress(host).transport,
        transports=[t for t in transports(host, repo.throttling) if t.concurrency is not None],
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
        table(TRANSPORT, templates.render(TRANSPORT, rows=transport_rows(repo, host))),
        table(ALIASES, templates.render(ALIASES, rows=alias_rows(repo)), MapCommand.POSTALIAS),
        table(MAILBOXES, templates.render(MAILBOXES, rows=mailbox_rows(repo, host))),
    ]
