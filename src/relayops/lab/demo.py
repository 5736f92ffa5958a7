"""`relayops demo`: the example repository running on the lab, end to end.

lab up -> publish the repository's DNS records in the lab DNS -> deploy -> send one
message as a customer through relay 1 (587, STARTTLS, AUTH) -> show it arrived at
the destination host with a DKIM signature that verifies against the lab DNS -> the
feedback loop (demo_feedback.py): a bounce suppresses its recipient, a complaint gets
the customer a 450 until the operator's release.
Idempotent: a second run reuses the lab, changes nothing and sends one more message.
The lab stays up (`relayops lab down` removes it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click
import yaml

from relayops.commands.options import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INVALID,
    emit_json,
    fail,
    json_option,
    repo_option,
)
from relayops.deploy.errors import DeployError
from relayops.deploy.runner import DeployResult, run_deploy
from relayops.deploy.target import LAB_INVENTORY, Target, load_target
from relayops.lab import lifecycle
from relayops.lab.demo_feedback import FeedbackShown, show_feedback
from relayops.lab.dns import LabDNS, reverse_zone
from relayops.lab.errors import LabError
from relayops.lab.mail import DkimResult, Submission, message, submit, token, verify_dkim
from relayops.lab.publish import publishable
from relayops.lab.sink import Sink
from relayops.labca import LabCA
from relayops.model import Status

CREDENTIALS = "lab/credentials.lab-only.yaml"
DEMO_LOGIN = "acme-app"
DEMO_SENDER = "demo@acme.example"
DEMO_RECIPIENT = "demo@isp.lab"
SUBMISSION_PORT = 587
T = TypeVar("T")


@dataclass
class Steps:
    timings: dict[str, float]
    quiet: bool = False  # --json: no step lines

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if not self.quiet:
            click.echo(f"==> {name}", err=True)
        started = time.monotonic()
        yield
        self.timings[name] = round(time.monotonic() - started, 1)


def lab_password(root: Path, login: str) -> str:
    data = yaml.safe_load((root / CREDENTIALS).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or login not in data:
        raise DeployError(f"{root / CREDENTIALS} has no password for {login}")
    return str(data[login])


def results_table(result: DeployResult) -> str:
    """pyinfra's results section (what changed on which host)."""
    marker = "--> Results:"
    text = result.output
    return text[text.index(marker) :].strip() if marker in text else text[-3000:]


def _retry(action: Callable[[], T], *, attempts: int = 20, delay: float = 0.5) -> T:
    """Right after a first start, a relay may still be opening its ports."""
    for _ in range(attempts - 1):
        try:
            return action()
        except OSError:
            time.sleep(delay)
    return action()


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@json_option
def demo(repo: Path, as_json: bool) -> None:
    """Run the example repository on the lab and send one signed message through it."""
    try:
        report = _demo(repo.resolve(), quiet=as_json)
    except (DeployError, LabError) as exc:
        if as_json:
            emit_json({"ok": False, "error": str(exc)})
            sys.exit(EXIT_INVALID if isinstance(exc, DeployError) else EXIT_FAILED)
        fail(str(exc), code=EXIT_INVALID if isinstance(exc, DeployError) else EXIT_FAILED)
    if as_json:
        emit_json(report.data())
    else:
        click.echo(report.text())
    if not report.dkim.valid:
        fail(f"the DKIM signature of {report.path} does not verify", code=EXIT_FAILED)


def _demo(root: Path, *, quiet: bool) -> Report:
    steps = Steps({}, quiet=quiet)
    started = time.monotonic()
    with steps.step("validate and compile the repository"):
        target = load_target(root, LAB_INVENTORY)
    relays = len(target.inventory.hosts)
    with steps.step(f"lab up ({relays} relays)"):
        up = lifecycle.up(relays=relays)
        topo = up.topology
    with steps.step("publish the repository's DNS records in the lab DNS"):
        zones = publishable(target.repo, target.inventory, root, reverse_zone(topo))
        LabDNS(topo).publish(zones)
    with steps.step("deploy (pyinfra over SSH)"):
        result = run_deploy(root / "inventory" / f"{LAB_INVENTORY}.py", capture=True)
        if result.returncode != 0:
            click.echo(result.output[-6000:], err=True)
            raise DeployError(f"the deploy failed (pyinfra exit {result.returncode})")
    relay = target.inventory.hosts[0]
    tag = token()
    subject = f"relayops demo {tag}"
    with steps.step(f"send a message as {DEMO_LOGIN} through {relay.fqdn}:{SUBMISSION_PORT}"):
        submission = Submission(
            relay=relay.ssh_hostname,
            port=SUBMISSION_PORT,
            login=DEMO_LOGIN,
            password=lab_password(root, DEMO_LOGIN),
            sender=DEMO_SENDER,
            recipients=(DEMO_RECIPIENT,),
            ca_file=LabCA().cert_path,
        )
        body = f"Sent by relayops demo through {relay.fqdn}.\n"
        _retry(lambda: submit(submission, message(DEMO_SENDER, (DEMO_RECIPIENT,), subject, body)))
    sink = Sink(topo)
    with steps.step("wait for it at the destination host"):
        arrived = sink.wait_for(lambda a: a.message.get("Subject") == subject, timeout=60)
    with steps.step("verify its DKIM signature against the lab DNS"):
        raw = arrived.path.read_bytes()
        checked = verify_dkim(raw, topo.dns.address)
    with steps.step("feedback loop: bounce -> suppressed; complaint -> 450 -> release"):
        shown = show_feedback(target, sink, submission, arrived, tag)
    report = Report(
        target=target,
        reused=up.reused,
        result=result,
        path=arrived.path,
        dkim=checked,
        subject=subject,
        timings=steps.timings,
        total=round(time.monotonic() - started, 1),
        dns_address=topo.dns.address,
        feedback=shown,
    )
    return report


@dataclass(frozen=True)
class Report:
    target: Target
    reused: bool
    result: DeployResult
    path: Path
    dkim: DkimResult
    subject: str
    timings: dict[str, float]
    total: float
    dns_address: str
    feedback: FeedbackShown

    def data(self) -> dict[str, object]:
        return {
            "ok": self.dkim.valid,
            "lab_reused": self.reused,
            "hosts": [h.fqdn for h in self.target.inventory.hosts],
            "sent": {"from": DEMO_SENDER, "to": DEMO_RECIPIENT, "login": DEMO_LOGIN},
            "subject": self.subject,
            "arrived": str(self.path),
            "dkim": {
                "valid": self.dkim.valid,
                "domain": self.dkim.domain,
                "selector": self.dkim.selector,
            },
            "feedback": {
                "bounced": self.feedback.bounced,
                "bounce_reply": self.feedback.bounce_reply,
                "suppressed_reply": self.feedback.suppressed_reply,
                "complaint_reply": self.feedback.complaint_reply,
                "complaint_seconds": round(self.feedback.complaint_delay, 1),
                "released_reply": self.feedback.released_reply,
            },
            "timings": self.timings,
            "seconds": self.total,
        }

    def text(self) -> str:
        hosts = ", ".join(f"{h.fqdn} ({h.ssh_hostname})" for h in self.target.inventory.hosts)
        customers = self.target.repo.customers.values()
        active = sorted(c.id for c in customers if c.status == Status.ACTIVE)
        other = sorted(f"{c.id} ({c.status.value})" for c in customers if c.status != Status.ACTIVE)
        signature = "valid" if self.dkim.valid else "INVALID"
        key = f"{self.dkim.selector}._domainkey.{self.dkim.domain}"
        lab = "reused" if self.reused else "built"
        lines = [
            "",
            results_table(self.result),
            "",
            "relayops demo",
            f"  lab            {lab}; DNS {self.dns_address}; destination isp.lab",
            f"  relay hosts    {hosts}",
            f"  customers      {len(active)} active: {', '.join(active)}",
            f"                 not sending: {', '.join(other) or '-'}",
            f"  sent           {DEMO_SENDER} -> {DEMO_RECIPIENT} as {DEMO_LOGIN}, "
            f"587 STARTTLS+AUTH, subject {self.subject!r}",
            f"  arrived        {self.path}",
            f"  DKIM           {signature}: d={self.dkim.domain} s={self.dkim.selector} "
            f"(key {key} TXT from {self.dns_address})",
            *self.feedback.lines(),
            "  timings (s)    "
            + ", ".join(f"{name}: {sec}" for name, sec in self.timings.items())
            + f"; total {self.total}",
            "  look at        relayops lab status; relayops lab ssh keys in "
            "/var/lib/relayops-lab/ssh/; /var/log/relayops/ on each relay",
            "  the lab stays up: relayops lab down removes it",
        ]
        return "\n".join(lines)
