"""A complaint delivered by SMTP to fbl@<service domain> of a real Postfix goes through the
compiled pipe(8) transport; `relayops feedback ingest` reads what the pipe delivered, and
the customer's next RCPT through Postfix gets the 450 — the loop on one host: stamp,
report, pipe, ingest, flag, refusal.

One gap, of this machine only: pipe(8) refuses to run a command as root, and the test
venv's Python lives under /root (0700), so the pipe's command here is `tee` (as nobody)
and the test runs the compiled ingest command line itself on what `tee` received."""

from __future__ import annotations

import email
import re
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.processes import run
from support.relay import Relay, golden_relay, submission

pytestmark = pytest.mark.real

SRC = Path(__file__).resolve().parents[2] / "src"
FLAGGED = "account alpha is temporarily disabled pending complaint review"


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    yield from golden_relay("throttling")


def _pipe_to_tee(relay: Relay) -> Path:
    """The compiled pipe entry, its command swapped for `tee` (see the module doc)."""
    root = relay.root
    master = root / "etc/postfix/master.cf"
    text = master.read_text()
    compiled = re.search(r"flags=Rq user=relayops argv=(\S+) feedback ingest --store \S+", text)
    assert compiled is not None, text
    assert compiled.group(1) == "/opt/relayops/venv/bin/relayops"
    inbox = root / "inbox"
    inbox.mkdir(mode=0o777)
    inbox.chmod(0o777)
    argv = f"/usr/bin/tee {inbox}/report.eml"
    master.write_text(text.replace(compiled.group(0), f"flags=Rq user=nobody argv={argv}"))
    run("postfix", "-c", str(root / "etc/postfix"), "reload")
    return inbox / "report.eml"


def _ingest(relay: Relay, message: Path) -> subprocess.CompletedProcess[bytes]:
    root = relay.root
    return subprocess.run(
        [sys.executable, "-m", "relayops", "feedback", "ingest",
         "--store", f"sqlite:{root}/policyd.sqlite", "--rules", f"{root}/etc/relayops/policy.json",
         "--trace-key-file", f"{root}/etc/relayops/trace.key",
         "--spool", f"{root}/feedback"],
        input=message.read_bytes(), capture_output=True, timeout=60,
        env={"PYTHONPATH": str(SRC)},
    )  # fmt: skip


def _log(relay: Relay) -> str:
    lines = (relay.root / "maillog").read_text().splitlines()
    return "\n".join(line for line in lines if "submission/" not in line)[-4000:]


def _submit(relay: Relay) -> tuple[int, bytes, smtplib.SMTP]:
    client = submission(relay, "alpha-app")
    code, text = client.mail("news@alpha-news.example")
    assert code == 250, text
    code, text = client.rcpt("reader@example.org")
    return code, text, client


def test_a_complaint_by_smtp_disables_the_customer(relay: Relay) -> None:
    delivered = _pipe_to_tee(relay)
    code, text, client = _submit(relay)
    assert code == 250, text
    code, text = client.data(b"From: news@alpha-news.example\r\nSubject: offer\r\n\r\nbuy\r\n")
    assert code == 250, text
    client.quit()
    queue_id = text.decode().rsplit(" ", 1)[-1]
    original = subprocess.run(
        ["postcat", "-c", str(relay.root / "etc/postfix"), "-h", "-q", queue_id],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert email.message_from_bytes(original)["X-Relayops-Trace"]
    report = (
        b"From: fbl@receiver.example\r\nTo: fbl@relay.example.net\r\n"
        b"Subject: abuse report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="A"\r\n'
        b"\r\n--A\r\nContent-Type: text/plain\r\n\r\nan abuse report\r\n"
        b"\r\n--A\r\nContent-Type: message/feedback-report\r\n\r\n"
        b"Feedback-Type: abuse\r\nUser-Agent: fbl/1\r\nVersion: 1\r\n"
        b"Original-Rcpt-To: reader@example.org\r\n"
        b"\r\n--A\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + original.replace(b"\n", b"\r\n")
        + b"\r\n--A--\r\n"
    )
    with smtplib.SMTP("127.0.0.1", relay.smtp, timeout=20) as mx:
        mx.sendmail("fbl@receiver.example", ["fbl@relay.example.net"], report)
    deadline = time.monotonic() + 30
    while not delivered.exists():
        assert time.monotonic() < deadline, _log(relay)
        time.sleep(0.2)
    time.sleep(0.5)  # tee finishes writing
    done = _ingest(relay, delivered)
    assert done.returncode == 0, done.stderr
    assert b"customer=alpha" in done.stderr
    deadline = time.monotonic() + 60
    while True:
        code, text, client = _submit(relay)
        client.quit()
        if code == 450:
            # Postfix quotes the policy's text after its own "<rcpt>: Recipient address
            # rejected:" (the enhanced status code stays first).
            assert text.decode() == (
                f"4.7.1 <reader@example.org>: Recipient address rejected: {FLAGGED}"
            )
            break
        assert code == 250, text
        assert time.monotonic() < deadline, _log(relay)
        time.sleep(0.5)
    outcomes = list((relay.root / "feedback").glob("*.json"))
    assert len(outcomes) == 1
    assert '"customer": "alpha"' in outcomes[0].read_text()
