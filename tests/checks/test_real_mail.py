"""TLS, ports and relay checks through `relayops check` against a real Postfix (with
Dovecot for SASL and IMAPS) on loopback, including misconfigured listeners."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relayops.cli import cli
from support.mailserver import (
    BAD_HOST,
    BAD_IP,
    FOREIGN_DOMAIN,
    GOOD_HOST,
    GOOD_IP,
    LOGIN,
    OWN_DOMAIN,
    PASSWORD,
    SIZE,
    MailServer,
    mail_server,
)
from support.processes import free_port

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def server() -> Iterator[MailServer]:
    with mail_server() as running:
        yield running


def login(password: str = PASSWORD) -> dict[str, str]:
    return {
        "customer": "acme",
        "username": LOGIN,
        "password": password,
        "own_domain": OWN_DOMAIN,
        "foreign_domain": FOREIGN_DOMAIN,
    }


def host(fqdn: str, address: str, **ports: int) -> dict[str, Any]:
    return {"fqdn": fqdn, "ips": [], "connect": address, "ports": ports}


def run_check(tmp_path: Path, data: dict[str, Any], *args: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({"service_domain": "relay.test", **data}))
    result = CliRunner().invoke(
        cli, ["check", "--targets", str(path), "--json", "--timeout", "5", *args]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)


def by_subject(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        r["subject"]: (r["status"], r["message"]) for g in report["groups"] for r in g["results"]
    }


def test_well_configured_relay_passes_everything(tmp_path: Path, server: MailServer) -> None:
    p = server.ports
    data = {
        "hosts": [
            host(
                GOOD_HOST,
                GOOD_IP,
                smtp=p["smtp"],
                submission=p["submission"],
                submissions=p["submissions"],
                imaps=p["imaps"],
            )
        ],
        "expected_size": SIZE,
        "logins": [login()],
    }
    code, report = run_check(
        tmp_path, data, "--only", "ports,tls,relay", "--ca-bundle", str(server.ca_file)
    )
    seen = by_subject(report)
    assert {s for s, (status, _) in seen.items() if status != "ok"} == set(), report
    assert code == 0
    assert report["summary"] == {"ok": len(seen), "warning": 0, "error": 0}
    sub = f"{GOOD_HOST}:{p['submission']}"
    # 4 ports + 4 endpoints x 6 TLS judgements + AUTH, SIZE, 3 relay probes, 1 login
    assert len(seen) == 4 + 24 + 6
    assert seen[f"{sub} SIZE"] == ("ok", f"{sub} advertises SIZE {SIZE}.")
    assert seen[f"{GOOD_HOST}:{p['smtp']} open relay"][1].endswith(
        "refuses to relay for outsiders (554 5.7.1 <relay-probe@example.com>: Relay access denied)."
    )
    assert seen[f"{GOOD_HOST}:{p['submissions']} open relay"][0] == "ok"
    assert seen[f"{sub} sender of {LOGIN}"][1] == (
        f"{LOGIN} may send from {OWN_DOMAIN} and is refused for {FOREIGN_DOMAIN} "
        f"(553 5.7.1 <relayops-check@{FOREIGN_DOMAIN}>: Sender address rejected: not owned "
        f"by user {LOGIN})."
    )
    assert seen[f"{GOOD_HOST}:{p['imaps']} refuses TLSv1"][0] == "ok"


def test_open_relay_and_auth_before_starttls_fail(tmp_path: Path, server: MailServer) -> None:
    p = server.ports
    bad = host(
        BAD_HOST,
        BAD_IP,
        smtp=p["open_relay"],
        submission=p["auth_before_tls"],
        submissions=p["open_relay_tls"],
    )
    code, report = run_check(
        tmp_path, {"hosts": [bad], "expected_size": 10240000}, "--only", "relay"
    )
    seen = by_subject(report)
    assert code == 1
    relay = f"{BAD_HOST}:{p['open_relay']}"
    assert seen[f"{relay} open relay"] == (
        "error",
        f"{relay} is an open relay: it accepted RCPT TO:<relay-probe@example.com> from an "
        "unauthenticated client (250 2.1.5 Ok); set smtpd_relay_restrictions = "
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination and keep "
        "mynetworks to the relay's own addresses.",
    )
    tls_relay = f"{BAD_HOST}:{p['open_relay_tls']}"
    assert seen[f"{tls_relay} open relay"][0] == "error"
    assert seen[f"{tls_relay} open relay"][1].startswith(f"{tls_relay} is an open relay: ")
    sub = f"{BAD_HOST}:{p['auth_before_tls']}"
    assert seen[f"{sub} AUTH before STARTTLS"] == (
        "error",
        f"{sub} offers AUTH PLAIN LOGIN before STARTTLS, so passwords can cross the network "
        "in clear; set smtpd_tls_auth_only = yes.",
    )
    assert seen[f"{sub} SIZE"][1].startswith(f"{sub} advertises SIZE {SIZE}, the plan expects")
    assert report["groups"][0]["results"][0]["status"] == "error"


def test_bad_certificates_and_tls10_fail(tmp_path: Path, server: MailServer) -> None:
    p = server.ports
    bad = host(
        BAD_HOST,
        BAD_IP,
        smtp=p["tls10"],
        submission=p["auth_before_tls"],
        submissions=p["expired"],
        imaps=p["imaps_self_signed"],
    )
    code, report = run_check(
        tmp_path, {"hosts": [bad]}, "--only", "tls", "--ca-bundle", str(server.ca_file)
    )
    seen = by_subject(report)
    assert code == 1
    tls10, wrong = f"{BAD_HOST}:{p['tls10']}", f"{BAD_HOST}:{p['auth_before_tls']}"
    expired = f"{BAD_HOST}:{p['expired']}"
    selfsigned = f"{BAD_HOST}:{p['imaps_self_signed']}"
    assert seen[f"{tls10} refuses TLSv1"][1].startswith(f"{tls10} accepts a TLSv1 handshake")
    assert seen[f"{tls10} refuses TLSv1.1"][0] == "error"
    assert seen[f"{tls10} chain"][0] == "ok"
    assert seen[f"{wrong} name"] == (
        "error",
        f"certificate of {wrong} names other.relay.test, not {BAD_HOST}; issue one with "
        f"{BAD_HOST} in its subjectAltName.",
    )
    assert seen[f"{expired} expiry"][1].startswith(f"certificate of {expired} expired on ")
    assert seen[f"{expired} chain"][0] == "ok"  # expiry is reported once, by its own check
    assert seen[f"{selfsigned} chain"] == (
        "error",
        f"certificate of {selfsigned} does not chain to the trusted CA (self-signed "
        "certificate); install a certificate issued by the CA together with its "
        "intermediates.",
    )
    # without the test CA, even the good certificates do not chain
    _, untrusted = run_check(tmp_path, {"hosts": [bad]}, "--only", "tls")
    assert by_subject(untrusted)[f"{tls10} chain"][0] == "error"


def test_wrong_password_and_closed_port(tmp_path: Path, server: MailServer) -> None:
    p = server.ports
    closed = free_port(GOOD_IP)
    good = host(
        GOOD_HOST,
        GOOD_IP,
        smtp=p["smtp"],
        submission=p["submission"],
        submissions=p["submissions"],
        imaps=closed,
    )
    code, report = run_check(
        tmp_path, {"hosts": [good], "logins": [login("wrong")]}, "--only", "ports,relay"
    )
    seen = by_subject(report)
    assert code == 1
    assert seen[f"{GOOD_HOST}:{closed}"][1].startswith(
        f"{GOOD_HOST}:{closed} ({GOOD_IP}) is not reachable"
    )
    assert seen[f"{GOOD_HOST}:{p['submission']} sender of {LOGIN}"][1].startswith(
        f"login {LOGIN} was refused on {GOOD_HOST}:{p['submission']} (535 5.7.8"
    )
