"""Certificate judgements: expiry thresholds, names, chain, versions."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest

from relayops.checks.result import Status
from relayops.checks.tls import (
    TlsObservation,
    judge_chain,
    judge_expiry,
    judge_legacy,
    judge_name,
    judge_observation,
    judge_version,
    name_matches,
    verifying_context,
)
from support.certs import NOW, Issued, make_ca, make_leaf

HOST = "relay1.relay.test"
S, G = f"{HOST}:587", f"host {HOST}"


@pytest.mark.parametrize(
    ("days", "status", "text"),
    [
        (90, Status.OK, "is valid until"),
        (10, Status.WARNING, "expires in 10 days"),
        (3, Status.ERROR, "expires in 3 days"),
        (-1, Status.ERROR, "expired on"),
    ],
)
def test_expiry_thresholds(days: int, status: Status, text: str) -> None:
    cert = make_leaf([HOST], issuer=None, days_left=days).cert
    result = judge_expiry(S, G, cert, NOW)
    assert result.status is status
    assert text in result.message


def test_wrong_name() -> None:
    cert = make_leaf(["other.relay.test"], issuer=None).cert
    result = judge_name(S, G, cert, HOST)
    assert result.status is Status.ERROR
    assert result.message == (
        f"certificate of {S} names other.relay.test, not {HOST}; issue one with {HOST} "
        "in its subjectAltName."
    )
    assert judge_name(S, G, make_leaf(["*.relay.test"], issuer=None).cert, HOST).status is (
        Status.OK
    )


def test_wildcard_covers_one_label_only() -> None:
    assert name_matches("*.relay.test", "a.relay.test")
    assert not name_matches("*.relay.test", "a.b.relay.test")
    assert not name_matches("*.relay.test", "relay.test")


def _verify_in_memory(leaf: Issued, ca_file: Path) -> str | None:
    """A real OpenSSL handshake over memory BIOs: the client's chain verdict."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert_file, key_file = leaf.write(ca_file.parent, "leaf")
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = verifying_context(str(ca_file))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=HOST)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for end, out, peer_in in ((client, c_out, s_in), (server, s_out, c_in)):
            try:
                end.do_handshake()
            except ssl.SSLCertVerificationError as exc:
                return exc.verify_message
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            peer_in.write(out.read())
    return None


def test_self_signed_and_foreign_ca_fail_the_chain(tmp_path: Path) -> None:
    ca = make_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem())
    assert _verify_in_memory(make_leaf([HOST], issuer=ca), ca_file) is None
    # expiry is judged apart: an expired leaf of the right CA still chains
    assert _verify_in_memory(make_leaf([HOST], issuer=ca, days_left=-400), ca_file) is None
    seen = _verify_in_memory(make_leaf([HOST], issuer=None), ca_file)
    assert seen == "self-signed certificate"
    result = judge_chain(S, G, seen)
    assert result.status is Status.ERROR
    assert "does not chain to the trusted CA (self-signed certificate)" in result.message
    other = _verify_in_memory(make_leaf([HOST], issuer=make_ca("another CA")), ca_file)
    assert other == "unable to get local issuer certificate"


def test_versions() -> None:
    assert judge_version(S, G, "TLSv1.3").status is Status.OK
    assert judge_version(S, G, "TLSv1.1").status is Status.ERROR
    legacy = judge_legacy(S, G, {"TLSv1": True, "TLSv1.1": False})
    assert [r.status for r in legacy] == [Status.ERROR, Status.OK]
    assert legacy[0].message.startswith(f"{S} accepts a TLSv1 handshake; disable it")
    untested = judge_legacy(S, G, {"TLSv1": "this machine's OpenSSL cannot offer it"})[0]
    assert untested.status is Status.WARNING
    assert "(this machine's OpenSSL cannot offer it)" in untested.message


def test_observation_bundles_every_judgement() -> None:
    leaf = make_leaf([HOST], issuer=make_ca(), days_left=5)
    from cryptography.hazmat.primitives import serialization

    obs = TlsObservation(
        "TLSv1.3",
        leaf.cert.public_bytes(serialization.Encoding.DER),
        None,
        {"TLSv1": False, "TLSv1.1": False},
    )
    results = judge_observation(S, G, HOST, obs, NOW + dt.timedelta(hours=1))
    assert [r.status for r in results] == [Status.OK] * 5 + [Status.ERROR]
