"""Sending as the example customers through the deployed relays (lab passwords)."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterable
from pathlib import Path

from relayops.lab.demo import lab_password
from relayops.lab.mail import Submission, message, submit, token
from relayops.lab.sink import Sink
from support.deployed import EXAMPLE, Deployed

SUBMISSION = 587


def submission(
    deployed: Deployed, relay: str, login: str, sender: str, recipients: tuple[str, ...]
) -> Submission:
    return Submission(
        relay=deployed.lab.host(relay).address,
        port=SUBMISSION,
        login=login,
        password=lab_password(EXAMPLE, login),
        sender=sender,
        recipients=recipients,
        ca_file=deployed.ca_file,
    )


def send(
    deployed: Deployed, relay: str, login: str, sender: str, recipients: tuple[str, ...]
) -> tuple[str, dict[str, tuple[int, bytes]]]:
    """Send one message; (its unique subject, the refused recipients)."""
    subject = f"e2e {token()}"
    sub = submission(deployed, relay, login, sender, recipients)
    refused = submit(sub, message(sender, recipients, subject, "e2e test\n"))
    return subject, refused


def refused_all(
    deployed: Deployed, relay: str, login: str, sender: str, recipients: tuple[str, ...]
) -> smtplib.SMTPRecipientsRefused:
    """Send expecting every recipient refused; the exception carries the replies."""
    try:
        send(deployed, relay, login, sender, recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        return exc
    raise AssertionError(f"{recipients} were accepted through {relay}")


def write_yaml_change(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{rel} has no {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def wait_all(sink: Sink, subjects: Iterable[str], *, timeout: float = 60) -> None:
    """Wait until a message with each subject reached the sink (one scan per poll)."""
    pending = set(subjects)
    deadline = time.monotonic() + timeout
    while pending:
        pending -= {str(a.message["Subject"]) for a in sink.messages()}
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} message(s) never arrived: {sorted(pending)[:5]}")
        time.sleep(0.5)
