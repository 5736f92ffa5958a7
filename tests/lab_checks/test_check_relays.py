"""Relay failures on the lab: each test changes one thing on relay1 (its certificate or
one Postfix setting), reloads Postfix, asserts the failing checks and their messages, and
puts the saved files back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from cryptography import x509

from lab_checks.changes import CERT, KEY, postfix_changed, relay_files
from lab_checks.checking import LabChecks, all_ok, errors
from relayops.checks.result import CheckResult
from relayops.checks.target import CheckTarget
from relayops.labca import LabCA, Pem, issue

pytestmark = pytest.mark.lab

RELAY = "relay1"
FQDN = "relay1.relay.example.net"
ADDRESS = "198.18.0.11"
# Postfix serves these with the certificate; Dovecot (993) keeps its own until it reloads.
POSTFIX_TLS_PORTS = (25, 587, 465)


def relay1(checks: LabChecks) -> CheckTarget:
    return checks.host(FQDN)


def seen(results: Sequence[CheckResult]) -> list[tuple[str, str, str]]:
    return [(r.check, r.subject, r.message) for r in errors(list(results))]


def lab_cert(names: Sequence[str], addresses: Sequence[str], now: dt.datetime) -> Pem:
    """A certificate from the lab CA (the one the checks trust), nothing cached on disk."""
    return issue(LabCA().ca(dt.datetime.now(dt.UTC)), names, addresses, now)


def install(pem: Pem) -> dict[str, bytes]:
    return {CERT: pem.cert, KEY: pem.key}


def test_expired_certificate(checks: LabChecks) -> None:
    """Issued by the right CA for the right name, but 100 days ago for 90 days."""
    pem = lab_cert([FQDN], [ADDRESS], dt.datetime.now(dt.UTC) - dt.timedelta(days=100))
    with relay_files(checks.lab, RELAY, install(pem)):
        results = checks.run_until(
            ("tls",), lambda r: len(errors(r)) >= len(POSTFIX_TLS_PORTS), relay1(checks)
        )
    until = x509.load_pem_x509_certificate(pem.cert).not_valid_after_utc
    when = until.strftime("%Y-%m-%d %H:%M UTC")
    assert seen(results) == [
        (
            "tls",
            f"{FQDN}:{port} expiry",
            f"certificate of {FQDN}:{port} expired on {when}; renew it now.",
        )
        for port in POSTFIX_TLS_PORTS
    ]
    checks.assert_healthy(("tls",), relay1(checks))


def test_certificate_for_another_name(checks: LabChecks) -> None:
    """relay2's certificate (valid, from the right CA) installed on relay1."""
    pem = lab_cert(["relay2.relay.example.net"], ["198.18.0.12"], dt.datetime.now(dt.UTC))
    with relay_files(checks.lab, RELAY, install(pem)):
        results = checks.run_until(
            ("tls",), lambda r: len(errors(r)) >= len(POSTFIX_TLS_PORTS), relay1(checks)
        )
    assert seen(results) == [
        (
            "tls",
            f"{FQDN}:{port} name",
            f"certificate of {FQDN}:{port} names relay2.relay.example.net, not {FQDN}; issue "
            f"one with {FQDN} in its subjectAltName.",
        )
        for port in POSTFIX_TLS_PORTS
    ]
    checks.assert_healthy(("tls",), relay1(checks))


def test_open_relay(checks: LabChecks) -> None:
    """The classic mistake: mynetworks widened to the whole network the relay sits in, so
    permit_mynetworks lets any neighbour relay through port 25."""
    command = "postconf -e 'mynetworks = 127.0.0.1/32 198.18.0.0/15'"
    with postfix_changed(checks.lab, RELAY, command):
        results = checks.run_until(("relay",), lambda r: bool(errors(r)), relay1(checks))
    assert seen(results) == [
        (
            "relay",
            f"{FQDN}:25 open relay",
            f"{FQDN}:25 is an open relay: it accepted RCPT TO:<relay-probe@example.com> from "
            "an unauthenticated client (250 2.1.5 Ok); set smtpd_relay_restrictions = "
            "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination and keep "
            "mynetworks to the relay's own addresses.",
        )
    ]
    checks.assert_healthy(("relay",), relay1(checks))


def test_auth_offered_before_starttls(checks: LabChecks) -> None:
    """Submission with optional TLS and smtpd_tls_auth_only=no announces AUTH in clear."""
    command = (
        "postconf -P submission/inet/smtpd_tls_auth_only=no "
        "submission/inet/smtpd_tls_security_level=may"
    )
    with postfix_changed(checks.lab, RELAY, command):
        results = checks.run_until(("relay",), lambda r: bool(errors(r)), relay1(checks))
    assert seen(results) == [
        (
            "relay",
            f"{FQDN}:587 AUTH before STARTTLS",
            f"{FQDN}:587 offers AUTH PLAIN LOGIN before STARTTLS, so passwords can cross the "
            "network in clear; set smtpd_tls_auth_only = yes.",
        )
    ]
    checks.assert_healthy(("relay",), relay1(checks))


def test_auth_only_off_is_harmless_while_tls_is_mandatory(checks: LabChecks) -> None:
    """smtpd_tls_auth_only=no alone changes nothing: with smtpd_tls_security_level=encrypt
    Postfix 3.7 still hides AUTH until STARTTLS, and the check judges what is offered."""
    command = "postconf -P submission/inet/smtpd_tls_auth_only=no"
    with postfix_changed(checks.lab, RELAY, command):
        status, out, _ = checks.lab.run(RELAY, "postconf -P submission/inet/smtpd_tls_auth_only")
        assert (status, out.strip()) == (0, "submission/inet/smtpd_tls_auth_only = no")
        results = checks.run(("relay",), relay1(checks))
    assert all_ok(results), seen(results)
    checks.assert_healthy(("relay",), relay1(checks))
