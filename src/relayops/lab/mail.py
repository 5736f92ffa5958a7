"""Send a message through a relay like a customer would, and check its DKIM signature.

Submission on 587 with STARTTLS (the lab CA verifies the relay's certificate) and
AUTH; verification with dkimpy against the lab's DNS server, never a public one.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import dns.exception
import dns.resolver


@dataclass(frozen=True)
class Submission:
    relay: str  # address of the relay
    port: int
    login: str
    password: str
    sender: str
    recipients: tuple[str, ...]
    ca_file: Path


def message(sender: str, recipients: tuple[str, ...], subject: str, body: str) -> EmailMessage:
    import datetime as dt

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    msg.set_content(body)
    return msg


def token() -> str:
    return uuid.uuid4().hex[:12]


def tls_context(ca_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextmanager
def authenticated(sub: Submission, *, timeout: float = 30) -> Iterator[smtplib.SMTP]:
    """A submission session to the relay, after STARTTLS and AUTH as `sub`'s login."""
    with smtplib.SMTP(sub.relay, sub.port, timeout=timeout) as smtp:
        smtp.ehlo("demo.client.lab")
        # The lab certificates carry the relays' addresses too, so the address is checked.
        smtp.starttls(context=tls_context(sub.ca_file))
        smtp.ehlo("demo.client.lab")
        smtp.login(sub.login, sub.password)
        yield smtp


def submit(
    sub: Submission, msg: EmailMessage, *, timeout: float = 30
) -> dict[str, tuple[int, bytes]]:
    """STARTTLS, AUTH, send; returns refused recipients (smtplib raises if all are refused)."""
    with authenticated(sub, timeout=timeout) as smtp:
        refused: dict[str, tuple[int, bytes]] = smtp.send_message(
            msg, from_addr=sub.sender, to_addrs=list(sub.recipients)
        )
        return refused


def lab_dnsfunc(nameserver: str, *, timeout: float = 5.0) -> Callable[..., bytes]:
    """A dkimpy `dnsfunc` asking only `nameserver` (the lab DNS host) for TXT records."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nameserver]
    resolver.lifetime = timeout

    def lookup(name: bytes, timeout: float = timeout) -> bytes:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        except (dns.exception.DNSException, UnicodeDecodeError):
            return b""
        for rdata in answer:
            return b"".join(rdata.strings)
        return b""

    return lookup


@dataclass(frozen=True)
class DkimResult:
    valid: bool
    domain: str
    selector: str


def verify_dkim(raw: bytes, nameserver: str) -> DkimResult:
    """Verify the first DKIM-Signature of `raw` with keys from `nameserver`."""
    verifier = dkim.DKIM(raw)
    valid = bool(verifier.verify(dnsfunc=lab_dnsfunc(nameserver)))
    domain = (verifier.domain or b"").decode()
    selector = (verifier.selector or b"").decode()
    return DkimResult(valid, domain, selector)
