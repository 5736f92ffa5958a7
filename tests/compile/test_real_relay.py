"""A real Postfix (with real Dovecot SASL and the real policy daemon) run from a compiled
host tree proves the sender-login binding and the TLS-before-AUTH rules.

Instances listen on 127.0.0.1 high ports only; mail is queued, never delivered.
Passwords of the golden logins are "pw-<login>".
"""

from __future__ import annotations

import base64
import email
import imaplib
import re
import smtplib
import subprocess
from collections.abc import Iterator

import dkim
import pytest
from cryptography.hazmat.primitives import serialization

from relayops.policyd.trace import verify_trace
from support.processes import wait_found
from support.relay import NO_VERIFY, TRACE_KEY, Relay, golden_relay, submission

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    """Customer alpha on the shared pool, customer dedi on dedicated IP dedi-1."""
    yield from golden_relay("throttling")


@pytest.fixture(scope="module")
def relay_with_suspended() -> Iterator[Relay]:
    yield from golden_relay("suspended")


def _plain(login: str, password: str) -> str:
    return base64.b64encode(f"\0{login}\0{password}".encode()).decode()


def envelope(client: smtplib.SMTP, sender: str, rcpt: str) -> tuple[int, bytes]:
    code, text = client.mail(sender)
    assert code == 250, text
    return client.rcpt(rcpt)


def refused_at_mail(client: smtplib.SMTP, sender: str) -> tuple[int, bytes]:
    """Submission judges the sender at MAIL FROM (smtpd_delay_reject = no)."""
    code, text = client.mail(sender)
    assert code != 250, text
    return code, text


def test_auth_is_not_offered_before_starttls(relay: Relay) -> None:
    with smtplib.SMTP("127.0.0.1", relay.submission, timeout=20) as client:
        client.ehlo("client.example")
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, text = client.mail("x@alpha.example")
        assert code == 530, text  # 5.7.0 Must issue a STARTTLS command first
    with submission(relay) as client:
        assert "PLAIN" in client.esmtp_features["auth"]


def test_port_465_is_implicit_tls_with_auth(relay: Relay) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", relay.submissions, timeout=20, context=NO_VERIFY) as c:
        c.ehlo("client.example")
        assert c.has_extn("auth")
        assert c.login("alpha-app", "pw-alpha-app")[0] == 235


def test_unauthenticated_client_cannot_relay_on_submission(relay: Relay) -> None:
    with submission(relay) as client:
        code, text = refused_at_mail(client, "x@alpha.example")
        assert (code, text) == (
            553,
            b"5.7.1 <x@alpha.example>: Sender address rejected: not logged in",
        )
        client.rset()
        code, text = refused_at_mail(client, "x@elsewhere.example")  # nobody's domain
        assert (code, text) == (
            554,
            b"5.7.1 <x@elsewhere.example>: Sender address rejected: Access denied",
        )


def test_port_25_takes_mail_for_the_service_domain_only(relay: Relay) -> None:
    # 127.0.0.2 stands for the Internet: only 127.0.0.1 (local notices) is in mynetworks.
    outside = ("127.0.0.2", 0)
    with smtplib.SMTP("127.0.0.1", relay.smtp, timeout=20, source_address=outside) as client:
        client.ehlo("isp.example")
        assert not client.has_extn("auth")
        code, text = envelope(client, "bounce@isp.example", "someone@gmail.com")
        assert code == 554 and b"Relay access denied" in text, text
        client.rset()
        code, text = envelope(client, "", "postmaster@relay.example.net")
        assert code == 250, text


def test_wrong_password_is_refused(relay: Relay) -> None:
    with submission(relay) as client:
        code, _ = client.docmd("AUTH", "PLAIN " + _plain("alpha-app", "not-the-password"))
        assert code == 535


def test_login_cannot_send_from_another_customers_domain(relay: Relay) -> None:
    with submission(relay, "alpha-app") as client:
        code, text = refused_at_mail(client, "billing@dedi.example")
        assert code == 553 and b"sender domain dedi.example is not registered for alpha" in text
        client.rset()
        code, text = refused_at_mail(client, "x@unknown-domain.example")
        assert code == 553, text


def test_login_is_case_insensitive_and_still_bound_to_its_domains(relay: Relay) -> None:
    client = smtplib.SMTP("127.0.0.1", relay.submission, timeout=20)
    with client:
        client.ehlo("client.example")
        client.starttls(context=NO_VERIFY)
        client.ehlo("client.example")
        code, _ = client.docmd("AUTH", "PLAIN " + _plain("Alpha-App", "pw-alpha-app"))
        assert code == 235
        code, text = envelope(client, "x@alpha.example", "someone@gmail.com")
        assert code == 250, text
        client.rset()
        code, text = refused_at_mail(client, "x@dedi.example")
        assert code == 553, text


def test_login_cannot_use_the_null_sender(relay: Relay) -> None:
    with submission(relay, "alpha-app") as client:
        code, text = refused_at_mail(client, "")
        assert code == 554 and b"null sender" in text, text


def test_login_sends_from_any_address_of_its_own_domains(relay: Relay) -> None:
    with submission(relay, "alpha-app") as client:
        for sender in ("news@alpha.example", "anyone.else@alpha-news.example"):
            client.rset()
            code, text = envelope(client, sender, "reader@gmail.com")
            assert code == 250, text  # the policy daemon (real) said DUNNO
            header = f"From: {sender}\r\nSubject: hello\r\n\r\nbody\r\n"
            code, text = client.data(header.encode())
            assert code == 250, text


def queued(relay: Relay, queue_id: str) -> str:
    return subprocess.run(
        ["postcat", "-c", str(relay.root / "etc/postfix"), "-q", queue_id],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip


def test_submitted_mail_is_dkim_signed_for_its_domain(relay: Relay) -> None:
    with submission(relay, "alpha-app") as client:
        code, text = envelope(client, "news@alpha-news.example", "reader@example.org")
        assert code == 250, text
        code, text = client.data(b"From: news@alpha-news.example\r\nSubject: hi\r\n\r\nbody\r\n")
        assert code == 250, text
    shown = queued(relay, text.decode().rsplit(" ", 1)[-1])
    assert "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=alpha-news.example;" in shown
    assert "s=a1;" in shown


def test_from_header_of_another_domain_is_refused_before_signing(relay: Relay) -> None:
    """The From: header is bound to the login too (the milter before OpenDKIM)."""
    with submission(relay, "alpha-app") as client:
        code, text = envelope(client, "x@alpha.example", "reader@example.org")
        assert code == 250, text
        code, text = client.data(b"From: ceo@dedi.example\r\nSubject: hi\r\n\r\nbody\r\n")
    assert (code, text.decode()) == (
        550,
        "5.7.1 From: domain dedi.example is not one of alpha's domains; "
        "use an address at alpha-news.example, alpha.example",
    )
    refused = "event=refused reason=from_domain login=alpha-app"
    log = relay.root / "policyd.log"  # lines are written in batches (policyd/logsink.py)
    wait_found(refused, lambda: refused in log.read_text(), timeout=5, every=0.02)


def test_starter_plan_refuses_a_newsletter(relay: Relay) -> None:
    """The golden repo's starter plan says `campaigns: forbidden` (alpha is on it)."""
    with submission(relay, "alpha-app") as client:
        code, text = envelope(client, "news@alpha.example", "reader@example.org")
        assert code == 250, text
        code, text = client.data(
            b"From: news@alpha.example\r\nList-Id: <news.alpha.example>\r\n\r\nbody\r\n"
        )
    assert (code, text.decode()) == (
        550,
        "5.7.1 plan starter of alpha does not allow bulk mail and this message is bulk "
        "(it has a List-Id header); send one message per person, "
        "or ask for a plan that allows campaigns",
    )


def test_pro_plan_signs_a_one_click_newsletter_from_a_subdomain(relay: Relay) -> None:
    """dedi's pro plan: campaigns allowed with RFC 8058 headers, From: on a subdomain."""
    message = (
        b"From: News <news@mail.dedi.example>\r\nList-Id: <news.dedi.example>\r\n"
        b"List-Unsubscribe: <https://dedi.example/u/1>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nSubject: hi\r\n\r\nbody\r\n"
    )
    with submission(relay, "dedi-app") as client:
        code, text = envelope(client, "news@dedi.example", "reader@example.org")
        assert code == 250, text
        code, text = client.data(message)
        assert code == 250, text
    shown = queued(relay, text.decode().rsplit(" ", 1)[-1])
    assert "d=dedi.example;" in shown
    # RFC 8058 4: both one-click headers are covered by the signature.
    tag = re.search(r"[;\s]h=([^;]+);", shown)
    assert tag is not None, shown
    signed = [name.strip() for name in tag.group(1).split(":")]
    assert {"List-Unsubscribe", "List-Unsubscribe-Post"} <= set(signed), signed


def test_notice_on_port_25_from_localhost_is_signed_with_the_service_key(relay: Relay) -> None:
    """policyd sends notices to 127.0.0.1:25 from notify_from: smtpd_milter_maps signs them."""
    with smtplib.SMTP("127.0.0.1", relay.smtp, timeout=20) as client:
        client.ehlo("localhost")
        code, text = envelope(client, "noreply@relay.example.net", "ops@alpha.example")
        assert code == 250, text
        code, text = client.data(b"From: noreply@relay.example.net\r\nSubject: n\r\n\r\nb\r\n")
        assert code == 250, text
    shown = queued(relay, text.decode().rsplit(" ", 1)[-1])
    assert "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=relay.example.net;" in shown
    assert "s=svc2026;" in shown


def test_reports_from_outside_are_accepted_for_the_feedback_address(relay: Relay) -> None:
    """Receivers' ARF reports go to feedback_address on port 25: taken (an alias), not relayed."""
    outside = ("127.0.0.2", 0)
    with smtplib.SMTP("127.0.0.1", relay.smtp, timeout=20, source_address=outside) as client:
        client.ehlo("isp.example")
        code, text = envelope(client, "fbl@isp.example", "fbl@relay.example.net")
        assert code == 250, text
        code, text = client.data(b"From: fbl@isp.example\r\nSubject: report\r\n\r\nb\r\n")
        assert code == 250, text
        client.rset()
        code, text = envelope(client, "fbl@isp.example", "nobody-here@relay.example.net")
        assert code == 550 and b"5.1.1" in text, text


def test_dedicated_customer_mail_is_handed_to_its_ip_instance(relay: Relay) -> None:
    with submission(relay, "dedi-app") as client:
        code, text = envelope(client, "shop@dedi.example", "buyer@example.org")
        assert code == 250, text
        code, text = client.data(b"From: shop@dedi.example\r\nSubject: order\r\n\r\nthanks\r\n")
        assert code == 250, text
    shown = queued(relay, text.decode().rsplit(" ", 1)[-1])
    assert "content_filter: relayops-handoff:[127.0.0.1]:10101" in shown, shown


def test_suspended_customer_is_refused_with_its_reason(relay_with_suspended: Relay) -> None:
    relay = relay_with_suspended
    with submission(relay, "susp-app") as client:  # a suspended login authenticates...
        code, text = client.mail("news@susp.example")  # ...and learns why it cannot send
        assert (code, text) == (
            554,
            b"5.7.1 <news@susp.example>: Sender address rejected: account susp is suspended: "
            b"complaint rate above 1 per 3000 messages, pending review",
        )
    with submission(relay, "alpha-app") as client:
        code, text = refused_at_mail(client, "x@susp.example")
        assert code == 553, text


def test_imap_is_offered_on_993_with_tls_only(relay: Relay) -> None:
    with imaplib.IMAP4_SSL("127.0.0.1", relay.imaps, ssl_context=NO_VERIFY, timeout=20) as imap:
        assert imap.login("alpha-app", "pw-alpha-app")[0] == "OK"
        assert imap.select("INBOX")[0] == "OK"
    settings = subprocess.run(
        ["doveconf", "-c", str(relay.root / "etc/dovecot/dovecot.conf"), "-n"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    plain = settings.split("inet_listener imap {", 1)[1].split("}", 1)[0]
    assert "port = 0" in plain  # no cleartext IMAP on 143


def test_submitted_mail_is_stamped_before_dkim_signs_it(relay: Relay) -> None:
    """The policy daemon's PREPENDs at DATA reach the queue file before the milter signs:
    the stamp verifies with the service key and the DKIM signature verifies with the
    prepended headers in place."""
    with submission(relay, "alpha-app") as client:
        code, text = envelope(client, "news@alpha-news.example", "reader@example.org")
        assert code == 250, text
        body = b"From: news@alpha-news.example\r\nSubject: hi\r\n\r\nbody\r\n"
        code, text = client.data(body)
        assert code == 250, text
    queue_id = text.decode().rsplit(" ", 1)[-1]
    message = subprocess.run(
        ["postcat", "-c", str(relay.root / "etc/postfix"), "-h", "-b", "-q", queue_id],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    parsed = email.message_from_bytes(message)
    trace = verify_trace(parsed["X-Relayops-Trace"], TRACE_KEY)
    assert trace is not None and trace.verified
    assert (trace.customer, trace.login, trace.queue_id) == ("alpha", "alpha-app", queue_id)
    assert parsed["Feedback-ID"] == "alpha-app:alpha:relayops"
    assert message.index(b"X-Relayops-Trace:") < message.index(b"Feedback-ID:")
    key_file = next((relay.root / "etc/opendkim/keys").rglob("*.private"))
    public = serialization.load_pem_private_key(key_file.read_bytes(), None).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    assert dkim.verify(message.replace(b"\n", b"\r\n"), dnsfunc=lambda *_a, **_k: record)
