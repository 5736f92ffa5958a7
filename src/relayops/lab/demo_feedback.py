"""`relayops demo`'s feedback section: the loop of issue #10, shown through SMTP.

1. bounce → suppressed: the demo customer writes to an unknown recipient; the destination
   host refuses it (550 5.1.1), the relay's DSN reaches the customer's own mail server
   (the destination host), which forwards it to bounces@<service> on a relay's port 25;
   the ingester suppresses the address and the next RCPT to it gets the 550 "suppressed".
2. complaint → 450 → release: the destination host sends an ARF report about the demo
   message to the feedback address; the customer's next RCPT gets 450 4.7.1; the operator's
   release (the ledger's, as `relayops feedback release` does it) lets it send again.

Idempotent: every run uses fresh addresses and releases what it disabled, even when a
step fails, so a second run starts from the same state.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from relayops.deploy.target import Target
from relayops.lab.errors import LabError
from relayops.lab.host import host_command
from relayops.lab.mail import Submission, message, submit
from relayops.lab.runner import Runner
from relayops.lab.sink import Arrived, Sink
from relayops.labca import LabCA
from relayops.policyd.ledger import Ledger, open_ledger

STORE_PASSWORD_FILE = "/etc/relayops/redis-password"  # hostlayout.STORE_PASSWORD_FILE
WAIT = 60.0  # seconds for each consequence to show at RCPT


@dataclass(frozen=True)
class FeedbackShown:
    bounced: str  # the unknown recipient
    bounce_reply: str  # the relay's DSN diagnostic, as the destination host said it
    suppressed_reply: str  # the next RCPT's answer
    complaint_reply: str  # RCPT's answer once the complaint was ingested
    complaint_delay: float  # seconds from the report sent to that answer
    released_reply: str  # RCPT's answer after the release

    def lines(self) -> list[str]:
        return [
            f"  bounce         {self.bounced}: {self.bounce_reply}",
            f"  suppressed     next RCPT: {self.suppressed_reply}",
            f"  complaint      ARF from isp.lab; next RCPT after {self.complaint_delay:.1f} s: "
            f"{self.complaint_reply}",
            f"  released       relayops feedback release; next RCPT: {self.released_reply}",
        ]


def rcpt_answer(submission: Submission, rcpt: str) -> str:
    """'250' when a message to `rcpt` is accepted, else the relay's RCPT refusal."""
    sub = replace(submission, recipients=(rcpt,))
    try:
        submit(sub, message(sub.sender, (rcpt,), "relayops demo feedback", "demo\n"))
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients[rcpt]
        return f"{code} {text.decode()}"
    return "250"


def diagnostic(raw: bytes) -> str:
    """The DSN's Diagnostic-Code (RFC 3464) without its type, unfolded."""
    found = re.search(rb"(?mi)^Diagnostic-Code:\s*[^;]*;\s*(.*(?:\r?\n[ \t].*)*)", raw)
    if found is None:
        return "(no Diagnostic-Code)"
    return " ".join(found.group(1).decode("utf-8", "replace").split())


def _until(what: str, probe: Callable[[], str], done: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + WAIT
    while True:
        answer = probe()
        if done(answer):
            return answer
        if time.monotonic() > deadline:
            raise LabError(f"demo feedback: {what} not within {WAIT:.0f} s (last: {answer})")
        time.sleep(1.0)


def operator_ledger(target: Target, sink: Sink) -> Ledger:
    """The deployed store as the operator reaches it: the inventory's URL with this
    machine's copy of the lab CA, the daemon's ACL password read on the first relay."""
    spec = target.inventory.shared_counters
    if not spec:
        raise LabError("demo feedback: the lab inventory names no shared store")
    parts = urlsplit(spec)
    query = dict(parse_qsl(parts.query)) | {"ca": str(LabCA().cert_path)}
    topo = sink.topo
    argv = host_command(topo, topo.relays[0], ["cat", STORE_PASSWORD_FILE])
    password = Runner().run(argv).stdout.strip()
    return open_ledger(urlunsplit(parts._replace(query=urlencode(query))), password=password)


def show_feedback(
    target: Target, sink: Sink, submission: Submission, arrived: Arrived, tag: str
) -> FeedbackShown:
    service = target.repo.service
    bounced = f"unknown-{tag}@isp.lab"
    if rcpt_answer(submission, bounced) != "250":
        raise LabError(f"demo feedback: {bounced} was refused before any bounce")
    dsn = sink.wait_for(
        lambda a: a.recipient == submission.sender and bounced.encode() in a.path.read_bytes(),
        timeout=WAIT,
    )
    said = diagnostic(dsn.path.read_bytes())
    # The customer's mail server forwards the relay's DSN to the service's bounce address.
    sink.send(dsn.path.read_bytes(), to=f"bounces@{service.domain}", sender=submission.sender)
    suppressed = _until(
        "the suppression", lambda: rcpt_answer(submission, bounced), lambda a: a != "250"
    )
    ledger = operator_ledger(target, sink)
    customer = _customer_of(target, submission.login)
    try:
        started = time.monotonic()
        sink.complain(arrived, to=service.feedback_address)
        probe = f"probe-{tag}@isp.lab"
        complained = _until(
            "the complaint flag", lambda: rcpt_answer(submission, probe), lambda a: a != "250"
        )
        delay = time.monotonic() - started
    finally:
        ledger.release(
            customer,
            who="relayops demo",
            why=f"demo {tag}: complaint reviewed",
            now=datetime.now(UTC).timestamp(),
        )
        ledger.close()
    released = _until(
        "the release", lambda: rcpt_answer(submission, f"after-{tag}@isp.lab"), lambda a: a == "250"
    )
    return FeedbackShown(bounced, said, suppressed, complained, delay, released)


def _customer_of(target: Target, login: str) -> str:
    for customer in target.repo.customers.values():
        if any(user.login == login for user in customer.users):
            return customer.id
    raise LabError(f"demo feedback: no customer has the login {login}")
