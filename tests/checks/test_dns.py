"""DKIM, DMARC, PTR/FCrDNS and MX judgements on captured answers."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from relayops.checks.dns import (
    expected_key_bytes,
    judge_dkim,
    judge_dmarc,
    judge_mx,
    judge_ptr,
)
from relayops.checks.records import dmarc_syntax_error
from relayops.checks.resolver import make_resolver, parse_nameserver
from relayops.checks.result import CheckInputError, Status

G = "customer acme"
# Lookups checkdmarc makes (a DMARC report address's MX) reach nothing: port 9 of loopback.
OFFLINE = make_resolver("127.0.0.1:9", timeout=0.2)


def rsa_pem() -> tuple[str, str]:
    """(PEM public key, the p= value a correct DKIM record carries)."""
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode(), base64.b64encode(der).decode()


def test_dkim_matches_the_expected_key_even_split_in_chunks() -> None:
    pem, p = rsa_pem()
    record = f"v=DKIM1; k=rsa; p={p[:200]} {p[200:]}"
    result = judge_dkim("acme.test", G, "s1", [record], expected_key_bytes(pem))
    assert result.status is Status.OK


def test_dkim_of_another_key_fails() -> None:
    pem, _ = rsa_pem()
    _, other = rsa_pem()
    result = judge_dkim("acme.test", G, "s1", [f"v=DKIM1; p={other}"], expected_key_bytes(pem))
    assert result.status is Status.ERROR
    assert "is not the signing key" in result.message
    assert "s1._domainkey.acme.test" in result.message


def test_dkim_absent_revoked_and_garbage() -> None:
    pem, _ = rsa_pem()
    want = expected_key_bytes(pem)
    assert "no DKIM key" in judge_dkim("a.test", G, "s1", [], want).message
    assert "revoked" in judge_dkim("a.test", G, "s1", ["v=DKIM1; p="], want).message
    assert "base64" in judge_dkim("a.test", G, "s1", ["v=DKIM1; p=!!"], want).message


def test_dkim_ed25519_compares_raw_key() -> None:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    assert judge_dkim("a.test", G, "e1", [record], expected_key_bytes(pem)).status is Status.OK


def test_expected_key_must_be_a_key() -> None:
    with pytest.raises(CheckInputError, match="not a PEM/DER key"):
        expected_key_bytes("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


def _dmarc_by_checkdmarc(record: str) -> str | None:
    """checkdmarc's verdict, its report-address lookups sent to a port nobody answers."""
    return dmarc_syntax_error(record, domain="acme.test", resolver=OFFLINE)


def _never_called(record: str) -> str | None:
    raise AssertionError(f"validated {record!r} though the judge had decided already")


def test_dmarc_absent_and_duplicate_are_judged_before_syntax() -> None:
    absent = judge_dmarc("acme.test", G, ["v=spf1 -all"], _never_called)
    assert (absent.status, absent.message) == (
        Status.ERROR,
        "no DMARC record at _dmarc.acme.test; publish TXT `v=DMARC1; p=none; "
        "rua=mailto:dmarc@acme.test` and tighten p= once reports are clean.",
    )
    two = judge_dmarc("a.test", G, ["v=DMARC1; p=none"] * 2, _never_called)
    assert two.message == "2 DMARC records at _dmarc.a.test, so receivers ignore all; keep one."


def test_dmarc_syntax_is_checkdmarcs() -> None:
    invalid = judge_dmarc("acme.test", G, ["v=DMARC1; p=block"], _dmarc_by_checkdmarc)
    assert (invalid.status, invalid.message) == (
        Status.ERROR,
        "DMARC record at _dmarc.acme.test is invalid (Tag p must have one of the following "
        "values: none,quarantine,reject - not block); fix it.",
    )
    no_scheme = judge_dmarc(
        "acme.test", G, ["v=DMARC1; p=none; rua=dmarc@acme.test"], _dmarc_by_checkdmarc
    )
    assert no_scheme.message == (
        "DMARC record at _dmarc.acme.test is invalid (dmarc@acme.test is not a valid DMARC "
        "report URI - please make sure that the URI begins with a scheme such as mailto:); "
        "fix it."
    )
    good = judge_dmarc(
        "acme.test", G, ["v=DMARC1; p=reject; rua=mailto:d@acme.test"], _dmarc_by_checkdmarc
    )
    assert (good.status, good.message) == (
        Status.OK,
        "DMARC record at _dmarc.acme.test is valid (p=reject).",
    )


def test_ptr_judgements() -> None:
    h = "host relay1.relay.test"
    good = judge_ptr("198.18.0.10", "out1.relay.test", h, ["out1.relay.test"], ["198.18.0.10"])
    assert good.status is Status.OK
    missing = judge_ptr("198.18.0.10", "out1.relay.test", h, [], [])
    assert "has no PTR record" in missing.message
    other = judge_ptr("198.18.0.10", "out1.relay.test", h, ["static-10.isp.test"], [])
    assert other.status is Status.ERROR
    assert other.message == (
        "PTR of 198.18.0.10 is static-10.isp.test but the relay says HELO out1.relay.test; "
        "set the PTR to out1.relay.test (or the transport's HELO name to the PTR)."
    )
    no_fcrdns = judge_ptr("198.18.0.10", "out1.relay.test", h, ["out1.relay.test"], ["1.2.3.4"])
    assert "resolves to 1.2.3.4, not back to 198.18.0.10" in no_fcrdns.message


def test_mx_judgements() -> None:
    g = "service relay.test"
    good = judge_mx("relay.test", g, [(10, "mx.relay.test")], {"mx.relay.test": ["1.2.3.4"]}, ())
    assert good.status is Status.OK
    assert "no MX record" in judge_mx("relay.test", g, [], {}, ()).message
    assert "null MX" in judge_mx("relay.test", g, [(0, "")], {}, ()).message
    dangling = judge_mx("relay.test", g, [(10, "mx.relay.test")], {}, ())
    assert "have no address" in dangling.message
    wrong = judge_mx(
        "relay.test", g, [(10, "mx.relay.test")], {"mx.relay.test": ["1.2.3.4"]}, ("in.relay.test",)
    )
    assert "expects in.relay.test" in wrong.message


def test_parse_nameserver() -> None:
    assert parse_nameserver("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("::1") == ("::1", 53)
    with pytest.raises(CheckInputError):
        parse_nameserver("ns.example:53")
