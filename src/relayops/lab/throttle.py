"""Measure per-IP × ISP-class throttling in the lab: send, then read what the receiver saw.

Two customers of relay1 send N messages to one domain of each ISP class (and to
`isp.lab`, unclassified, as the unthrottled reference): one on a dedicated IP, one on
the shared pool. Their output instances are stopped while the mail is submitted, so
each instance then gets its whole batch at once and the queue manager's limits, not
the submission speed, set the pace. The destination host's log gives the connections
delivering at once per sending IP and domain (and the sessions open at once); its
stored messages the delivery times, the sending address and the HELO
(docs/throttling.md, bench/throttle/).
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from relayops.compile.instances import instance_for
from relayops.compile.placement import customer_egress
from relayops.lab import deliveries, receivers
from relayops.lab.demo import lab_password
from relayops.lab.errors import LabTimeoutError
from relayops.lab.host import host_command
from relayops.lab.mail import message, tls_context, token
from relayops.lab.runner import Runner
from relayops.lab.sink import Sink
from relayops.lab.topology import Topology
from relayops.model import IspClass, RelayHost, Repo

RELAY = "relay1.relay.example.net"
# (customer, login, sender): one dedicated IP and one shared-pool customer of relay1.
SENDERS = (
    ("globex", "globex-mailer", "news@globex.example"),
    ("acme", "acme-app", "mailer@acme.example"),
)
REFERENCE_DOMAIN = "isp.lab"  # in no class: Postfix's default transport, no throttling
TOLERANCE = 0.10  # the "within 10 %"
SUBMISSION_PORT = 587


@dataclass(frozen=True)
class Expected:
    """What the class allows one sending IP towards one destination domain."""

    class_name: str | None  # None: the unthrottled reference
    concurrency: int | None
    rate_delay_seconds: int
    messages_per_connection: int | None


@dataclass(frozen=True)
class Measured:
    customer: str
    ip: str  # the customer's sending IP (inventory)
    ptr: str  # its PTR name, the HELO it must use
    domain: str
    expected: Expected
    delivered: int
    span_seconds: float
    interval_seconds: float
    # Connections from this IP in a mail transaction for this domain at once: the parallel
    # deliveries Postfix's concurrency limit bounds.
    max_connections: int
    # Sessions open at once (idle cached ones and closing ones included): reported only.
    max_sessions: int
    max_messages_per_connection: int
    source_ips: tuple[str, ...]  # as the receiver saw them
    helos: tuple[str, ...]

    def failures(self, sent: int) -> list[str]:
        """Why this measurement does not match its class; empty if it does."""
        out: list[str] = []
        where = f"{self.customer} ({self.ip}) -> {self.domain}"
        if self.delivered != sent:
            out.append(f"{where}: {self.delivered} of {sent} messages delivered")
        if self.source_ips != (self.ip,):
            out.append(f"{where}: left from {', '.join(self.source_ips)}, not {self.ip}")
        if self.helos != (self.ptr,):
            out.append(f"{where}: HELO {', '.join(self.helos)}, not {self.ptr}")
        exp = self.expected
        if exp.rate_delay_seconds and not within(
            self.interval_seconds, exp.rate_delay_seconds, TOLERANCE
        ):
            out.append(
                f"{where}: one delivery every {self.interval_seconds:.2f} s, configured "
                f"{exp.rate_delay_seconds} s"
            )
        if exp.concurrency is not None and not within(
            self.max_connections, exp.concurrency, TOLERANCE
        ):
            out.append(
                f"{where}: {self.max_connections} connections delivering at once, configured "
                f"{exp.concurrency}"
            )
        limit = exp.messages_per_connection
        if limit is not None and self.max_messages_per_connection > limit:
            out.append(
                f"{where}: {self.max_messages_per_connection} messages on one connection, "
                f"configured {limit}"
            )
        return out


def within(measured: float, configured: float, tolerance: float) -> bool:
    """|measured - configured| <= tolerance × configured (1e-9 absorbs float rounding)."""
    return abs(measured - configured) <= tolerance * configured + 1e-9


def expected_for(domain: str, classes: dict[str, IspClass]) -> Expected:
    for name, cls in classes.items():
        if domain in cls.domains:
            return Expected(
                name, cls.concurrency, cls.rate_delay_seconds, cls.messages_per_connection
            )
    return Expected(None, None, 0, None)


def recipient(run: str, n: int, domain: str, classes: dict[str, IspClass]) -> str:
    """The n-th recipient of a run at `domain`. A class bounded by concurrency alone gets a
    slow receiver (receivers.SLOW_PREFIX): a delivery that takes milliseconds ends before the
    next message is queued, so the limit would be measured on a trickle, not a backlog."""
    exp = expected_for(domain, classes)
    slow = exp.concurrency is not None and exp.concurrency > 1 and not exp.rate_delay_seconds
    prefix = f"{receivers.SLOW_PREFIX}-" if slow else ""
    return f"{prefix}throttle-{run}-{n}@{domain}"


def class_domains(classes: dict[str, IspClass]) -> list[str]:
    """One destination domain per class (its first), then the unthrottled reference."""
    return [classes[name].domains[0] for name in sorted(classes)] + [REFERENCE_DOMAIN]


def _submit_batch(
    relay: str,
    login: str,
    password: str,
    sender: str,
    recipients: Sequence[str],
    tag: str,
    ca: Path,
) -> None:
    """One SMTP session, one message per recipient (the subject names the run and index)."""
    with smtplib.SMTP(relay, SUBMISSION_PORT, timeout=60) as smtp:
        smtp.ehlo("bench.client.lab")
        smtp.starttls(context=tls_context(ca))
        smtp.ehlo("bench.client.lab")
        smtp.login(login, password)
        for i, rcpt in enumerate(recipients):
            smtp.send_message(message(sender, (rcpt,), f"{tag} {i}", "throttle\n"))


def measure(
    *,
    repo: Repo,
    topology: Topology,
    ca_file: Path,
    per_class: int,
    timeout: float = 600.0,
    runner: Runner | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[list[Measured], float]:
    """Send and measure; returns the measurements and the run's wall time (seconds)."""
    runner = runner or Runner()
    sink = Sink(topology, runner)
    lab_relay = next(h for h in topology.relays if h.fqdn == RELAY)
    host: RelayHost = next(h for h in repo.inventories["lab"].hosts if h.name == RELAY)
    domains = class_domains(repo.throttling)
    run = token()
    instances = []
    for cid, *_ in SENDERS:
        egress = customer_egress(host, repo.customers[cid])
        assert egress is not None, f"{RELAY} does not serve {cid}"
        instances.append((cid, egress, instance_for(host, egress)))

    def in_relay(*argv: str) -> None:
        runner.run(host_command(topology, lab_relay, list(argv)))

    sink.clear()
    offset = len(sink.log())
    for _, _, instance in instances:
        in_relay("postmulti", "-i", instance.name, "-p", "stop")
    try:
        for cid, login, sender in SENDERS:
            recipients = [
                recipient(run, n, domain, repo.throttling)
                for domain in domains
                for n in range(per_class)
            ]
            progress(f"submitting {len(recipients)} messages as {cid}")
            _submit_batch(
                lab_relay.address,
                login,
                lab_password(repo.root, login),
                sender,
                recipients,
                f"throttle {run} {cid}",
                ca_file,
            )
    finally:
        for _, _, instance in instances:
            in_relay("postmulti", "-i", instance.name, "-p", "start")
    started = time.monotonic()
    in_relay("postqueue", "-f")  # the submission instance retries the handoff now
    total = per_class * len(domains) * len(SENDERS)
    progress(f"waiting for {total} messages")
    while True:
        arrived = [a for a in sink.messages() if run in str(a.message["Subject"])]
        if len(arrived) >= total:
            break
        if time.monotonic() - started > timeout:
            raise LabTimeoutError(f"{len(arrived)} of {total} messages arrived in {timeout} s")
        time.sleep(1)
    wall = time.monotonic() - started
    conns = deliveries.connections(sink.log()[offset:])
    results: list[Measured] = []
    for cid, egress, _ in instances:
        ip = str(egress.ip.address)
        for domain in domains:
            mine = [
                a
                for a in arrived
                if a.domain == domain and str(a.message["Subject"]).split()[2] == cid
            ]
            senders = [
                deliveries.sender_of(str(a.message.get_all("Received", [""])[0])) for a in mine
            ]
            pace = deliveries.pace([a.path.stat().st_mtime for a in mine])
            carried = deliveries.carrying(conns, ip, domain)
            results.append(
                Measured(
                    customer=cid,
                    ip=ip,
                    ptr=egress.ip.ptr,
                    domain=domain,
                    expected=expected_for(domain, repo.throttling),
                    delivered=len(mine),
                    span_seconds=round(pace.span_seconds, 3),
                    interval_seconds=round(pace.interval_seconds, 3),
                    max_connections=deliveries.max_simultaneous_deliveries(carried),
                    max_sessions=deliveries.max_simultaneous(carried),
                    max_messages_per_connection=max((len(c.queue_ids) for c in carried), default=0),
                    source_ips=tuple(sorted({s.ip for s in senders if s})),
                    helos=tuple(sorted({s.helo for s in senders if s})),
                )
            )
    return results, wall
