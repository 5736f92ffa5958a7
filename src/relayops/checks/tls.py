"""TLS checks on 25/587 (STARTTLS) and 465/993 (implicit): real handshakes, then pure
judgements of the version, legacy protocols, chain, name and expiry."""

from __future__ import annotations

import datetime as dt
import smtplib
import socket
import ssl
import warnings
from dataclasses import dataclass
from typing import Literal

from cryptography import x509

from relayops.checks.parallel import gather
from relayops.checks.probe import (
    EHLO_NAME,
    ProbeError,
    close_smtp,
    insecure_context,
    open_smtp,
)
from relayops.checks.result import CheckResult, error, ok, warning
from relayops.checks.target import CheckTarget, HostTarget

CHECK = "tls"
WARN_DAYS = 21
ERROR_DAYS = 7
# OpenSSL's X509_V_FLAG_NO_CHECK_TIME: the chain is judged apart from expiry, which
# `judge_expiry` reports with its own thresholds.
_NO_CHECK_TIME = 0x200000
_MODERN = ("TLSv1.2", "TLSv1.3")
LEGACY_VERSIONS = ("TLSv1", "TLSv1.1")

Mode = Literal["starttls", "implicit-smtp", "implicit-imap"]


@dataclass(frozen=True, slots=True)
class TlsObservation:
    """What one endpoint showed: the negotiated version, its certificate, OpenSSL's chain
    verdict against the CA bundle (None = verified), and, per legacy version, whether a
    handshake was accepted (True), refused (False) or could not be tried (why, a str)."""

    version: str | None
    cert_der: bytes
    verify_error: str | None
    legacy_accepted: dict[str, bool | str]


def verifying_context(ca_bundle: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # judged by judge_name, with its own message
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VerifyFlags(_NO_CHECK_TIME)
    if ca_bundle:
        ctx.load_verify_locations(cafile=ca_bundle)
    else:
        ctx.load_default_certs()
    return ctx


def _legacy_context(version: str) -> ssl.SSLContext:
    ctx = insecure_context()
    with warnings.catch_warnings():  # we offer TLS 1.0/1.1 on purpose, to see them refused
        warnings.simplefilter("ignore", DeprecationWarning)
        pinned = ssl.TLSVersion.TLSv1 if version == "TLSv1" else ssl.TLSVersion.TLSv1_1
        ctx.minimum_version = pinned
        ctx.maximum_version = pinned
    # Debian's OpenSSL refuses to offer TLS < 1.2 at security level >= 1.
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def handshake(
    address: str,
    fqdn: str,
    port: int,
    mode: Mode,
    ctx: ssl.SSLContext,
    timeout: float,
    *,
    greeting: bool = True,
) -> tuple[str | None, bytes]:
    """One TLS handshake; returns the negotiated version and the peer's certificate.
    With `greeting`, an implicit-TLS service must then greet in its protocol."""
    if mode == "starttls":
        smtp = open_smtp(address, fqdn, port, timeout=timeout)
        try:
            smtp.ehlo(EHLO_NAME)
            smtp.starttls(context=ctx)
            sock = smtp.sock
            assert isinstance(sock, ssl.SSLSocket)
            return sock.version(), sock.getpeercert(binary_form=True) or b""
        except smtplib.SMTPNotSupportedError as exc:
            raise ProbeError(f"{address}:{port} does not offer STARTTLS") from exc
        finally:
            close_smtp(smtp)
    try:
        raw = socket.create_connection((address, port), timeout)
    except OSError as exc:
        raise ProbeError(f"cannot connect to {fqdn} ({address}:{port}): {exc}") from exc
    with raw, ctx.wrap_socket(raw, server_hostname=fqdn) as tls:
        if greeting:
            prefix = b"* OK" if mode == "implicit-imap" else b"220"
            _expect_greeting(tls, prefix, f"{address}:{port}")
        return tls.version(), tls.getpeercert(binary_form=True) or b""


def _expect_greeting(tls: ssl.SSLSocket, prefix: bytes, endpoint: str) -> None:
    """The service behind TLS must speak (IMAP `* OK`, SMTP `220`), not just terminate TLS."""
    try:
        greeting = tls.recv(512)
    except OSError as exc:
        raise ProbeError(f"{endpoint} sent no greeting after the TLS handshake: {exc}") from exc
    if not greeting.startswith(prefix):
        shown = greeting[:60].decode(errors="replace").strip() or "nothing"
        raise ProbeError(f"{endpoint} greeted with {shown!r} instead of {prefix.decode()}")


def _is_client_side(exc: ssl.SSLError) -> bool:
    """True when our own OpenSSL refused to offer the protocol (nothing was tested)."""
    return "NO_PROTOCOLS_AVAILABLE" in str(exc) or "no protocols available" in str(exc)


def probe_tls(
    address: str,
    fqdn: str,
    port: int,
    mode: Mode,
    *,
    ca_bundle: str | None,
    timeout: float = 10.0,
) -> TlsObservation:
    verify_error: str | None = None
    try:
        version, der = handshake(address, fqdn, port, mode, verifying_context(ca_bundle), timeout)
    except ssl.SSLCertVerificationError as exc:
        verify_error = exc.verify_message or str(exc)
        try:
            version, der = handshake(address, fqdn, port, mode, insecure_context(), timeout)
        except (ssl.SSLError, OSError, smtplib.SMTPException) as again:
            raise ProbeError(f"TLS handshake with {address}:{port} failed: {again}") from again
    except (ssl.SSLError, OSError, smtplib.SMTPException) as exc:
        raise ProbeError(f"TLS handshake with {address}:{port} failed: {exc}") from exc
    legacy: dict[str, bool | str] = {}
    for legacy_version in LEGACY_VERSIONS:
        try:
            ctx = _legacy_context(legacy_version)
            handshake(address, fqdn, port, mode, ctx, timeout, greeting=False)
            legacy[legacy_version] = True
        except ProbeError as exc:  # no connection or no STARTTLS: nothing was tried
            legacy[legacy_version] = str(exc)
        except ssl.SSLError as exc:
            refused_here = "this machine's OpenSSL cannot offer it"
            legacy[legacy_version] = refused_here if _is_client_side(exc) else False
        except TimeoutError:  # silence is not a refusal: nothing was proven
            legacy[legacy_version] = f"no answer within {timeout:g} s"
        except (OSError, smtplib.SMTPException):
            legacy[legacy_version] = False  # the server hung up mid-handshake: refused
    return TlsObservation(version, der, verify_error, legacy)


# --- pure judgements ---------------------------------------------------------------------


def judge_version(subject: str, group: str, version: str | None) -> CheckResult:
    if version in _MODERN:
        return ok(CHECK, group, f"{subject} version", f"{subject} negotiated {version}.")
    return error(
        CHECK,
        group,
        f"{subject} version",
        f"{subject} negotiated {version or 'no TLS version'}; require TLS 1.2 or newer "
        "(Postfix: smtpd_tls_protocols = >=TLSv1.2).",
    )


def judge_legacy(subject: str, group: str, accepted: dict[str, bool | str]) -> list[CheckResult]:
    results = []
    for version, verdict in accepted.items():
        sub = f"{subject} refuses {version}"
        if verdict is True:
            results.append(
                error(
                    CHECK,
                    group,
                    sub,
                    f"{subject} accepts a {version} handshake; disable it "
                    "(Postfix: smtpd_tls_protocols and smtpd_tls_mandatory_protocols = "
                    ">=TLSv1.2; Dovecot: ssl_min_protocol = TLSv1.2).",
                )
            )
        elif verdict is False:
            results.append(ok(CHECK, group, sub, f"{subject} refuses {version}."))
        else:
            results.append(
                warning(
                    CHECK,
                    group,
                    sub,
                    f"could not test {version} on {subject} ({verdict}); rerun (with a longer "
                    "--timeout, or from a host whose OpenSSL still offers it).",
                )
            )
    return results


def judge_chain(subject: str, group: str, verify_error: str | None) -> CheckResult:
    if verify_error is None:
        return ok(CHECK, group, f"{subject} chain", f"{subject} chains to the trusted CA.")
    return error(
        CHECK,
        group,
        f"{subject} chain",
        f"certificate of {subject} does not chain to the trusted CA ({verify_error}); "
        "install a certificate issued by the CA together with its intermediates.",
    )


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in san.value.get_values_for_type(x509.DNSName)]


def name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 6.4.3: a wildcard stands for exactly one whole left-most label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def judge_name(subject: str, group: str, cert: x509.Certificate, fqdn: str) -> CheckResult:
    names = _names(cert)  # clients ignore the CN when a SAN is present (RFC 6125 6.4.4)
    if any(name_matches(n, fqdn) for n in names):
        return ok(CHECK, group, f"{subject} name", f"certificate of {subject} covers {fqdn}.")
    shown = ", ".join(names) or "no DNS name"
    return error(
        CHECK,
        group,
        f"{subject} name",
        f"certificate of {subject} names {shown}, not {fqdn}; issue one with {fqdn} in "
        "its subjectAltName.",
    )


def judge_expiry(subject: str, group: str, cert: x509.Certificate, now: dt.datetime) -> CheckResult:
    left = cert.not_valid_after_utc - now
    days = left.total_seconds() / 86400
    sub = f"{subject} expiry"
    when = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    if days < 0:
        return error(
            CHECK, group, sub, f"certificate of {subject} expired on {when}; renew it now."
        )
    if days < ERROR_DAYS:
        return error(
            CHECK,
            group,
            sub,
            f"certificate of {subject} expires in {days:.0f} days ({when}); renew it now "
            "and check why automatic renewal did not.",
        )
    if days < WARN_DAYS:
        return warning(
            CHECK,
            group,
            sub,
            f"certificate of {subject} expires in {days:.0f} days ({when}); check that "
            "renewal runs.",
        )
    return ok(CHECK, group, sub, f"certificate of {subject} is valid until {when}.")


def judge_observation(
    subject: str, group: str, fqdn: str, obs: TlsObservation, now: dt.datetime
) -> list[CheckResult]:
    cert = x509.load_der_x509_certificate(obs.cert_der)
    return [
        judge_version(subject, group, obs.version),
        *judge_legacy(subject, group, obs.legacy_accepted),
        judge_chain(subject, group, obs.verify_error),
        judge_name(subject, group, cert, fqdn),
        judge_expiry(subject, group, cert, now),
    ]


def endpoints(host: HostTarget) -> list[tuple[int, Mode]]:
    p = host.ports
    return [
        (p.smtp, "starttls"),
        (p.submission, "starttls"),
        (p.submissions, "implicit-smtp"),
        (p.imaps, "implicit-imap"),
    ]


def check_endpoint(
    target: CheckTarget,
    host: HostTarget,
    port: int,
    mode: Mode,
    *,
    now: dt.datetime,
    timeout: float,
) -> list[CheckResult]:
    group, subject = f"host {host.fqdn}", f"{host.fqdn}:{port}"
    try:
        obs = probe_tls(
            host.connect_address, host.fqdn, port, mode, ca_bundle=target.ca_bundle, timeout=timeout
        )
    except ProbeError as exc:
        return [
            error(
                CHECK,
                group,
                f"{subject} handshake",
                f"no TLS session with {subject}: {exc}; check that the service listens and "
                "has a certificate configured.",
            )
        ]
    return judge_observation(subject, group, host.fqdn, obs, now)


def run_tls_checks(
    target: CheckTarget, *, now: dt.datetime, timeout: float = 10.0, workers: int = 1
) -> list[CheckResult]:
    todo = [(host, port, mode) for host in target.hosts for port, mode in endpoints(host)]
    return gather(
        lambda e: check_endpoint(target, *e, now=now, timeout=timeout), todo, workers=workers
    )
