"""Notices reach the customer's IMAP mailbox on a real relay built from a compiled host.

Postfix, Dovecot (IMAP + LMTP) and the policy daemon run from the rendered
files on loopback (support/relay.py). A notice queued in the daemon's store
goes out through Postfix: the contact address is queued (never delivered
here), the copy for <customer>@mailbox.relayops.invalid goes over LMTP into
the customer's one mailbox, which each of its logins reads over IMAPS.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import smtplib
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from relayops.policyd.notices import NoticeRequest
from relayops.policyd.outbox import queue_notice
from support.relay import GOLDEN, NO_VERIFY, Relay, golden_relay, submission

from .test_real_relay import _plain

pytestmark = pytest.mark.real

# `doveadm pw -s SHA512-CRYPT -p pw-alpha-crm`: the harness's password convention.
ALPHA_CRM = (
    "{SHA512-CRYPT}$6$noED3MTZABg1Kze2$I7qcxbVtAACaYUCEZmw24P9rSQJXLph1mvrzVn47jkQtc3y0M"
    "IEVhjdwkeErYUm76p3ZM/zGkzOLb.S.QydA1."
)


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    """alpha (active, logins alpha-app and alpha-crm), susp (suspended), term (terminated)."""
    base = GOLDEN / "suspended" / "repo"
    alpha = (base / "customers/alpha.yaml").read_text()
    alpha += f'  - login: alpha-crm\n    password: "{ALPHA_CRM}"\n'
    # The terminated customer of the "terminated" case, moved to this repo's shared pool.
    term = (GOLDEN / "terminated/repo/customers/term.yaml").read_text()
    term = term.replace("warmup:\n  schedule: standard-5w\n  start: 2026-06-01\n", "")
    term = term.replace("dedicated_ip: dedi-1", "pool: shared")
    overlay = {"customers/alpha.yaml": alpha.encode(), "customers/term.yaml": term.encode()}
    yield from golden_relay("suspended", overlay)


def inbox(relay: Relay, login: str) -> list[EmailMessage]:
    """Every message in the login's INBOX, read over IMAPS."""
    with imaplib.IMAP4_SSL("127.0.0.1", relay.imaps, ssl_context=NO_VERIFY, timeout=20) as imap:
        assert imap.login(login, f"pw-{login}")[0] == "OK"
        assert imap.select("INBOX", readonly=True)[0] == "OK"
        _, found = imap.search(None, "ALL")
        messages = []
        for num in found[0].split():
            _, data = imap.fetch(num, "(RFC822)")
            raw = data[0]
            assert isinstance(raw, tuple)
            parsed = email.message_from_bytes(raw[1], policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            messages.append(parsed)
        return messages


def wait_inbox(relay: Relay, login: str, count: int, timeout: float = 30.0) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while True:
        messages = inbox(relay, login)
        if len(messages) >= count:
            return messages
        if time.monotonic() > deadline:
            log = (relay.root / "maillog").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{login}: {len(messages)} message(s) after {timeout}s\n{log}")
        time.sleep(0.5)


def queue(relay: Relay) -> str:
    return subprocess.run(
        ["postqueue", "-c", str(relay.root / "etc/postfix"), "-p"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip


def test_a_notice_lands_in_the_customer_mailbox_read_by_each_of_its_logins(relay: Relay) -> None:
    reason = "complaint from example.org about a message of 2026-11-22"
    queue_notice(
        f"sqlite:{relay.root}/policyd.sqlite",
        NoticeRequest("disabled", "alpha", {"reason": reason}),
    )
    first = wait_inbox(relay, "alpha-app", 1)
    assert len(first) == 1
    notice = first[0]
    assert notice["Subject"] == "[Example Relay] sending temporarily disabled (Alpha Books)"
    assert notice["To"] == "ops@alpha.example"
    assert notice["Auto-Submitted"] == "auto-generated"
    body = notice.get_content().replace("\r\n", "\n")
    assert f"pending the review of a complaint: {reason}\n" in body
    # The other login of the same customer reads the very same message.
    second = inbox(relay, "alpha-crm")
    assert [m["Message-ID"] for m in second] == [notice["Message-ID"]]
    # The contact address got it too: queued by Postfix (never delivered in tests).
    assert "ops@alpha.example" in queue(relay)
    # Another customer's mailbox is untouched.
    assert inbox(relay, "susp-app") == []


def test_the_mailbox_domain_takes_mail_from_local_processes_only(relay: Relay) -> None:
    outside = ("127.0.0.2", 0)  # stands for the Internet (only 127.0.0.1 is in mynetworks)
    with smtplib.SMTP("127.0.0.1", relay.smtp, timeout=20, source_address=outside) as client:
        client.ehlo("isp.example")
        assert client.mail("spoof@isp.example")[0] == 250
        code, text = client.rcpt("alpha@mailbox.relayops.invalid")
        assert (code, text) == (
            554,
            b"5.7.1 <alpha@mailbox.relayops.invalid>: Recipient address rejected: Access denied",
        )
    # Nor may a customer write into another customer's mailbox through submission.
    with submission(relay, "alpha-app") as client:
        assert client.mail("news@alpha.example")[0] == 250
        code, text = client.rcpt("susp@mailbox.relayops.invalid")
        assert (code, text) == (
            554,
            b"5.7.1 <susp@mailbox.relayops.invalid>: Recipient address rejected: "
            b"notice mailboxes take mail from the relay only",
        )


def test_suspended_login_gets_the_reason_at_mail_from_terminated_cannot_log_in(
    relay: Relay,
) -> None:
    with submission(relay, "susp-app") as client:
        code, text = client.mail("news@susp.example")
        assert (code, text) == (
            554,
            b"5.7.1 <news@susp.example>: Sender address rejected: account susp is suspended: "
            b"complaint rate above 1 per 3000 messages, pending review",
        )
    with submission(relay) as client:
        code, text = client.docmd("AUTH", "PLAIN " + _plain("term-app", "pw-term-app"))
        # Dovecot's answer for a user its passdb does not know.
        assert (code, text) == (535, b"5.7.8 Error: authentication failed: (reason unavailable)")
    # The suspended customer still reads its mailbox; the terminated one cannot log in.
    assert inbox(relay, "susp-app") == []
    with (
        imaplib.IMAP4_SSL("127.0.0.1", relay.imaps, ssl_context=NO_VERIFY, timeout=20) as imap,
        pytest.raises(imaplib.IMAP4.error),
    ):
        imap.login("term-app", "pw-term-app")
