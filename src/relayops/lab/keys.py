"""SSH keys of the lab: one client key pair authorized for root everywhere, a host key per host."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private_openssh: bytes
    public_line: str  # "ssh-ed25519 AAAA… comment"


def new_ed25519(comment: str) -> KeyPair:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return KeyPair(private_openssh=private, public_line=f"{public.decode()} {comment}")


def write_private(path: Path, pair: KeyPair) -> None:
    """Write `path` (mode 0600) and `path.pub`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pair.private_openssh)
    path.with_name(path.name + ".pub").write_text(pair.public_line + "\n")


def ensure_client_key(path: Path) -> str:
    """The lab's client key at `path`, created on first use; return its public line."""
    pub = path.with_name(path.name + ".pub")
    if not (path.exists() and pub.exists()):
        write_private(path, new_ed25519("relayops-lab"))
    return pub.read_text().strip()


def known_hosts_line(names: list[str], public_line: str) -> str:
    key_type, key_b64 = public_line.split()[:2]
    return f"{','.join(names)} {key_type} {key_b64}"
