"""A private CA on the controller and one certificate per relay host (`relayops_tls: lab-ca`).

Production takes its certificates from ACME (docs/deploy.md); the lab cannot reach a
public CA, so the controller plays one. Certificates last 90 days like ACME ones (a
scanner counts more than 398 days as a finding) and are renewed 30 days before expiry.

Neither deploy nor lab code: the deploy issues from it for an inventory whose TLS
source is `lab-ca`, the lab and its tests trust it; both import it from here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LAB_CA_DIR = Path("/var/lib/relayops-lab/ca")
CA_DAYS = 3650
CERT_DAYS = 90
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# A CA signs certificates and CRLs, nothing else (RFC 5280 4.2.1.3).
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def new_ca(now: dt.datetime, *, name: str = "relayops lab CA") -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _alt_names(names: Sequence[str], addresses: Sequence[str]) -> list[x509.GeneralName]:
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    return alt


def issue(ca: Pem, names: Sequence[str], addresses: Sequence[str], now: dt.datetime) -> Pem:
    """A server certificate for `names[0]` (and every name and address as SAN), with chain."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alt_names(names, addresses)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Pem(cert.public_bytes(serialization.Encoding.PEM) + ca.cert, _key_pem(key))


def still_good(
    pem: Pem, ca: Pem, names: Sequence[str], addresses: Sequence[str], now: dt.datetime
) -> bool:
    """Issued by this CA, for exactly these names and addresses, not due for renewal."""
    cert = x509.load_pem_x509_certificate(pem.cert)
    try:
        # Signed by this CA's key: every new_ca() has the same name, so names prove nothing.
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert))
    except (InvalidSignature, TypeError, ValueError):
        return False
    if now + RENEW_BEFORE >= cert.not_valid_after_utc:
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san) == set(_alt_names(names, addresses)) and pem.cert.endswith(ca.cert)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_suffix(path.suffix + ".new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    temp.replace(path)


class LabCA:
    """A CA kept in a directory of the controller, issuing and caching host certificates."""

    def __init__(self, directory: Path = LAB_CA_DIR) -> None:
        self.directory = directory

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    def ca(self, now: dt.datetime) -> Pem:
        key_path = self.directory / "ca.key"
        if self.cert_path.exists() and key_path.exists():
            return Pem(self.cert_path.read_bytes(), key_path.read_bytes())
        pem = new_ca(now)
        _write_private(key_path, pem.key)
        self.cert_path.write_bytes(pem.cert)
        return pem

    def host(
        self, fqdn: str, names: Sequence[str], addresses: Sequence[str], now: dt.datetime
    ) -> Pem:
        """The host's certificate and key, issued again only when missing, stale or changed."""
        ca = self.ca(now)
        all_names = [fqdn, *[n for n in names if n != fqdn]]
        # Keyed by names and addresses too: two labs may both have a relay1 (other addresses).
        identity = hashlib.sha256("\0".join([*all_names, "", *addresses]).encode()).hexdigest()
        host_dir = self.directory / "hosts" / f"{fqdn}-{identity[:8]}"
        cert_path, key_path = host_dir / "fullchain.pem", host_dir / "privkey.pem"
        if cert_path.exists() and key_path.exists():
            found = Pem(cert_path.read_bytes(), key_path.read_bytes())
            if still_good(found, ca, all_names, addresses, now):
                return found
        pem = issue(ca, all_names, addresses, now)
        _write_private(key_path, pem.key)
        cert_path.write_bytes(pem.cert)
        return pem
