"""Reports the relay would receive about its own stamped mail: a Postfix bounce, an ARF."""

from __future__ import annotations

from relayops.feedback import make_trace

KEY = b"test-service-trace-key"


def stamp(customer: str = "acme", login: str = "acme-app", *, key: bytes = KEY) -> str:
    return make_trace(customer=customer, login=login, queue_id="4XyZab12", time=1, key=key)


def original(trace: str, to: str) -> bytes:
    return (
        b"Received: from app.acme.example (app.acme.example [203.0.113.5])\n"
        b"\tby relay1.relayops.example (Postfix) with ESMTPSA id 4XyZab12\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=rly2026; bh=x; b=y\n"
        + f"X-Relayops-Trace: {trace}\n".encode()
        + b"Message-ID: <20261201.1@acme.example>\nFrom: app@acme.example\n"
        + f"To: {to}\nSubject: hello\n\nhi\n".encode()
    )


def relay_bounce(
    trace: str,
    *,
    to: str = "gone@receiver.example",
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{to}>: Recipient address rejected: User unknown",
    action: str = "failed",
) -> bytes:
    """A Postfix RFC 3464 bounce of a stamped message."""
    diag = diagnostic.format(to=to)
    return (
        b"From: MAILER-DAEMON@mx.receiver.example (Mail Delivery System)\n"
        b"To: app@acme.example\n"
        b"Subject: Undelivered Mail Returned to Sender\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n'
        b"\n--B\nContent-Type: text/plain\n\n"
        + f"<{to}>: host mx.receiver.example[192.0.2.9] said: {diag}\n".encode()
        + b"\n--B\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.receiver.example\nX-Postfix-Queue-ID: 9F00A1\n\n"
        + f"Final-Recipient: rfc822; {to}\nAction: {action}\nStatus: {status}\n".encode()
        + f"Diagnostic-Code: smtp; {diag}\n".encode()
        + b"\n--B\nContent-Type: message/rfc822\n\n"
        + original(trace, to)
        + b"\n--B--\n"
    )


def arf(trace: str, *, feedback_type: str = "abuse", to: str = "reader@receiver.example") -> bytes:
    """An RFC 5965 complaint about a stamped message."""
    return (
        b"From: fbl@receiver.example\nTo: fbl@relayops.example\n"
        b"Subject: complaint about message from 198.18.0.10\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="A"\n'
        b"\n--A\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
        b"\n--A\nContent-Type: message/feedback-report\n\n"
        + f"Feedback-Type: {feedback_type}\nUser-Agent: fbl/1.0\nVersion: 1\n".encode()
        + f"Original-Rcpt-To: {to}\nSource-IP: 198.18.0.10\n".encode()
        + b"\n--A\nContent-Type: message/rfc822\n\n"
        + original(trace, to)
        + b"\n--A--\n"
    )
