"""DKIM keys: generated here, stored only age-encrypted under `secrets/dkim/`.

`secrets/dkim/<domain>.<selector>.key.age` holds the PEM private key encrypted
to every recipient of `secrets/recipients.txt`; `<domain>.<selector>.pub.pem`
beside it is the public key the DNS record is made from.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from relayops.model.fields import normalize_domain
from relayops.model.secrets import RECIPIENTS_FILE, encrypted_key_source, public_key_source

KEY_BITS = 2048  # RFC 8301 3.2: 1024 at least, 2048 recommended


class DkimKeyError(Exception):
    """A key cannot be generated, read or decrypted; the message says what to do."""


@dataclass(frozen=True)
class KeyFiles:
    private_age: Path
    public_pem: Path


def key_files(repo_root: Path, domain: str, selector: str) -> KeyFiles:
    return KeyFiles(
        repo_root / encrypted_key_source(domain, selector),
        repo_root / public_key_source(domain, selector),
    )


def read_recipients(repo_root: Path) -> list[pyrage.x25519.Recipient]:
    """age X25519 recipients, one `age1...` per line; `#` starts a comment."""
    path = repo_root / RECIPIENTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DkimKeyError(
            f"{path} is missing: list the age public keys (age1...) allowed to decrypt secrets"
        ) from exc
    recipients = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            recipients.append(pyrage.x25519.Recipient.from_str(line))
        except pyrage.RecipientError as exc:
            raise DkimKeyError(f"{path}:{number}: not an age X25519 recipient: {line!r}") from exc
    if not recipients:
        raise DkimKeyError(f"{path} lists no recipient; add at least one age1... public key")
    return recipients


def generate_key(
    repo_root: Path, domain: str, selector: str, *, overwrite: bool = False
) -> KeyFiles:
    """Make an RSA-2048 key pair; write it encrypted (private) and plain (public)."""
    domain = normalize_domain(domain)
    files = key_files(repo_root, domain, selector)
    if not overwrite and (files.private_age.exists() or files.public_pem.exists()):
        raise DkimKeyError(
            f"a key for {domain} selector {selector} already exists ({files.private_age}); "
            "rotate with a new selector instead of replacing a published key"
        )
    recipients = read_recipients(repo_root)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # OpenDKIM reads PKCS#1 and PKCS#8
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    files.private_age.parent.mkdir(parents=True, exist_ok=True)
    files.private_age.write_bytes(pyrage.encrypt(private_pem, recipients))
    files.public_pem.write_bytes(public_pem)
    return files


def decrypt_key(repo_root: Path, domain: str, selector: str, identity_path: Path) -> bytes:
    """The PEM private key, decrypted with the age identity file (for the deploy)."""
    files = key_files(repo_root, domain, selector)
    return decrypt_secret(files.private_age, identity_path)


def decrypt_secret(source: Path, identity_path: Path) -> bytes:
    """Decrypt any age file of `secrets/` (a SecretFile's source) with an identity file."""
    identities = read_identities(identity_path)
    try:
        encrypted = source.read_bytes()
    except FileNotFoundError as exc:
        raise DkimKeyError(
            f"{source} is missing: run `relayops dkim generate DOMAIN --selector S`"
        ) from exc
    try:
        plain: bytes = pyrage.decrypt(encrypted, identities)
    except pyrage.DecryptError as exc:
        raise DkimKeyError(
            f"{source} cannot be decrypted with {identity_path}: was it encrypted to that "
            "identity's recipient (secrets/recipients.txt)?"
        ) from exc
    return plain


def read_identities(identity_path: Path) -> list[pyrage.x25519.Identity]:
    try:
        text = identity_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DkimKeyError(f"cannot read age identity {identity_path}: {exc.strerror}") from exc
    identities = [
        pyrage.x25519.Identity.from_str(line.strip())
        for line in text.splitlines()
        if line.strip().startswith("AGE-SECRET-KEY-")
    ]
    if not identities:
        raise DkimKeyError(f"{identity_path} holds no AGE-SECRET-KEY-... line")
    return identities


def public_key_der(repo_root: Path, domain: str, selector: str) -> bytes | None:
    """DER SubjectPublicKeyInfo of the published key, None if it was never generated."""
    path = key_files(repo_root, domain, selector).public_pem
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return None
    key = serialization.load_pem_public_key(pem)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_identity() -> tuple[str, str]:
    """A fresh age X25519 identity: (secret line, public recipient)."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def generate_trace_key(repo_root: Path, source: str, *, overwrite: bool = False) -> Path:
    """A random 256-bit service key for the X-Relayops-Trace stamp, age-encrypted like
    the DKIM keys (base64url text: the daemon strips whitespace and uses the bytes)."""
    path = repo_root / source
    if path.exists() and not overwrite:
        raise DkimKeyError(
            f"{path} exists; replacing it makes every stamp already sent unverifiable"
        )
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=") + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pyrage.encrypt(key, read_recipients(repo_root)))
    return path
