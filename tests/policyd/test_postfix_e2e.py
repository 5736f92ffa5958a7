"""End to end: a private Postfix with Dovecot SASL asks the daemon; smtplib is the customer.

The loopback relay of support/submission.py (Postfix from its own config directory,
Dovecot SASL from a passwd-file, the policy daemon); accepted mail is relayed to an SMTP
sink, as are the daemon's notices.
"""

from __future__ import annotations

import shutil
import signal
import smtplib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.policyd import Daemon, rules_data
from support.smtp_sink import SmtpSink
from support.submission import Submission, postfix, services

pytestmark = pytest.mark.real

PASSWORDS = {"acme-app": "acme-secret", "globex": "globex-secret"}
QUOTA = 5
MAX_BYTES = 20000


@dataclass
class Stack:
    submission: Submission
    daemon: Daemon
    sink: SmtpSink

    def smtp(self, login: str) -> smtplib.SMTP:
        return self.submission.smtp(login)


@pytest.fixture
def stack(smtp_sink: SmtpSink) -> Iterator[Stack]:
    """support/submission.py's loopback relay, without the milter, relaying to the sink."""
    # Postfix's unprivileged processes must reach the queue and the SASL socket:
    # not under pytest's 0700 tmp tree.
    root = Path(tempfile.mkdtemp(prefix="relayops-e2e-"))
    root.chmod(0o755)
    rules = rules_data(acme={"daily_quota": QUOTA, "max_message_bytes": MAX_BYTES})
    notify = ("--notify-smtp", f"127.0.0.1:{smtp_sink.port}")
    try:
        with (
            services(root, rules, PASSWORDS, daemon_args=notify) as shared,
            postfix(root / "submission", shared, milter=False, relay_port=smtp_sink.port) as sub,
        ):
            yield Stack(sub, shared.daemon, smtp_sink)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def message(sender: str, body: str = "hello") -> str:
    return f"From: {sender}\r\nTo: list@example.org\r\nSubject: test\r\n\r\n{body}\r\n"


def test_quota_warning_suspension_and_size_through_postfix(stack: Stack) -> None:
    sender = "news@acme.example"
    rcpts = [f"user{i}@example.org" for i in range(QUOTA + 2)]
    with stack.smtp("acme-app") as smtp:
        refused = smtp.sendmail(sender, rcpts, message(sender))
    # The recipients past the quota get the 4xx with its text; the others are accepted.
    assert sorted(refused) == rcpts[QUOTA:]
    for code, text in refused.values():
        assert code == 452
        assert text.decode().startswith("4.7.1 ")
        assert "daily quota of 5 reached for acme; sending resumes at 00:00 Europe/Paris" in (
            text.decode()
        )

    # The accepted recipients are relayed; the warning and limit mails arrive too.
    received = stack.sink.wait_for(3, timeout=30)
    relayed = [m for m in received if m.mail_from == sender]
    notices = {m.message["Subject"]: m for m in received if m.mail_from != sender}
    assert len(relayed) == 1 and sorted(relayed[0].rcpt_to) == sorted(rcpts[:QUOTA])
    assert set(notices) == {
        "Acme Corp: 80 % of today's quota used",
        "Acme Corp: daily quota of 5 reached",
    }
    assert notices["Acme Corp: 80 % of today's quota used"].rcpt_to == ["ops@acme.example"]

    # A suspended login gets the 5xx with the reason.
    with stack.smtp("globex") as smtp, pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        smtp.sendmail("billing@globex.example", ["a@example.org"], message("b@globex.example"))
    code, text = info.value.recipients["a@example.org"]
    assert code == 554
    assert "5.7.1" in text.decode()
    assert "account globex is suspended: unpaid invoice 2026-117" in text.decode()


def test_sender_domain_and_message_size_through_postfix(stack: Stack) -> None:
    with stack.smtp("acme-app") as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            smtp.sendmail("ceo@not-acme.example", ["a@example.org"], message("x@x"))
        code, text = info.value.recipients["a@example.org"]
        assert code == 553 and "sender domain not-acme.example is not registered" in text.decode()

        # Declared with SIZE at MAIL FROM: refused at RCPT.
        big = message("news@acme.example", "x" * MAX_BYTES)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            smtp.sendmail("news@acme.example", ["a@example.org"], big)
        code, text = info.value.recipients["a@example.org"]
        assert code == 552 and text.decode().startswith("5.3.4 ")
        assert f"message size {len(big)} bytes exceeds the limit of 20000 bytes" in text.decode()

        # Not declared: refused after the data, at END-OF-MESSAGE.
        smtp.rset()
        assert smtp.mail("news@acme.example")[0] == 250
        assert smtp.rcpt("b@example.org")[0] == 250
        code, text = smtp.data(big.encode())
        assert code == 552 and text.startswith(b"5.3.4 ")
        assert b"exceeds the limit of 20000 bytes for acme" in text
    log = stack.daemon.wait_log("reason=size", 2)
    assert "reason=sender_domain" in log and log.count("reason=size") == 2
    assert stack.daemon.stop(signal.SIGTERM) == 0
