"""Thin network helpers shared by the TLS and SMTP probes.

Probes connect to a pinned address (the relay IP under test) while speaking to the host's
name, so SNI and certificate checks use the name a customer configures even when DNS
is not (yet) pointing there.
"""

from __future__ import annotations

import smtplib
import socket
import ssl

EHLO_NAME = "relayops-check.invalid"  # RFC 2606 name: says who is probing


class ProbeError(Exception):
    """Raised when a service could not be reached or spoke no usable protocol; the message
    names the endpoint and what failed, for firewall or daemon investigation."""


class PinnedSMTP(smtplib.SMTP):
    """smtplib.SMTP that connects to `address` whatever host name it is given; the name is
    kept as the TLS server name for STARTTLS."""

    def __init__(self, address: str, server_name: str, *, timeout: float) -> None:
        self._address = address
        super().__init__(timeout=timeout)
        # smtplib.starttls() takes the TLS server name from `_host`, which only the
        # constructor sets (and the constructor would connect to the name, not the IP).
        self._host = server_name

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout)


class PinnedSMTPSSL(smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL (implicit TLS, port 465) pinned to `address` like `PinnedSMTP`."""

    def __init__(self, address: str, *, context: ssl.SSLContext, timeout: float) -> None:
        self._address = address
        super().__init__(context=context, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((self._address, port), timeout)
        return self.context.wrap_socket(raw, server_hostname=host)


def open_smtp(
    address: str,
    fqdn: str,
    port: int,
    *,
    implicit_tls: bool = False,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> smtplib.SMTP:
    """Connect and read the banner; raise `ProbeError` if that fails."""
    smtp: smtplib.SMTP
    if implicit_tls:
        smtp = PinnedSMTPSSL(address, context=context or insecure_context(), timeout=timeout)
    else:
        smtp = PinnedSMTP(address, fqdn, timeout=timeout)
    try:
        code, banner = smtp.connect(fqdn, port)
    except (OSError, smtplib.SMTPException) as exc:
        smtp.close()
        raise ProbeError(f"cannot connect to {fqdn} ({address}:{port}): {exc}") from exc
    if code != 220:
        smtp.close()
        raise ProbeError(f"{address}:{port} greeted with {code} {banner.decode(errors='replace')}")
    return smtp


def close_smtp(smtp: smtplib.SMTP) -> None:
    """QUIT politely; a server that already hung up is fine."""
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def insecure_context() -> ssl.SSLContext:
    """For probes whose subject is not the certificate (the TLS check judges that)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tcp_reachable(address: str, port: int, *, timeout: float = 5.0) -> str | None:
    """None when a TCP connection opens, else why not."""
    try:
        with socket.create_connection((address, port), timeout):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__
