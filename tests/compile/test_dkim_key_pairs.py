"""Every DKIM key pair of the example repository matches: the public key derived from the
decrypted private key (what OpenDKIM signs with) is the committed .pub.pem.

The lab DNS record and `relayops check`'s expected key both come from the .pub.pem, so
a .pub.pem that is not the private key's half would pass every check and still make
every signature fail at receivers. Only this test reads the private side.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from relayops.compile.dkim import decrypt_secret

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = ROOT / "lab/age-identity.lab-only.txt"
ENCRYPTED = sorted((ROOT / "secrets/dkim").glob("*.key.age"))
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_every_public_key_has_its_private_key() -> None:
    stems = {p.name.removesuffix(".key.age") for p in ENCRYPTED}
    publics = {p.name.removesuffix(".pub.pem") for p in (ROOT / "secrets/dkim").glob("*.pub.pem")}
    assert stems == publics
    assert len(stems) == 15  # 14 customer keys and the service domain's


@pytest.mark.parametrize("encrypted", ENCRYPTED, ids=[p.name for p in ENCRYPTED])
def test_public_key_is_derived_from_the_decrypted_private_key(encrypted: Path) -> None:
    private = serialization.load_pem_private_key(decrypt_secret(encrypted, IDENTITY), None)
    public_pem = encrypted.with_name(encrypted.name.removesuffix(".key.age") + ".pub.pem")
    committed = serialization.load_pem_public_key(public_pem.read_bytes())
    assert private.public_key().public_bytes(*SPKI) == committed.public_bytes(*SPKI)
