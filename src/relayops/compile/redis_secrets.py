"""Redis passwords: generated here, stored only age-encrypted under `secrets/redis/`.

`secrets/redis/<user>.password.age` holds one ACL user's password (one line),
encrypted like the DKIM keys to every recipient of `secrets/recipients.txt`.
The deploy decrypts them on the controller and writes them on hosts only into
mode-600 files (the daemon's password file, Redis's masterauth, Sentinel's
auth-pass); redis.conf's ACL file holds their SHA-256 only.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pyrage

from relayops.compile.dkim import read_recipients

SECRET_DIR = "secrets/redis"
PASSWORD_BYTES = 32  # 256 bits, as Redis's ACL GENPASS


def password_source(user: str) -> str:
    """Repository-relative path of `user`'s encrypted password."""
    return f"{SECRET_DIR}/{user}.password.age"


def generate_passwords(
    repo_root: Path, users: tuple[str, ...], *, overwrite: bool = False
) -> list[Path]:
    """A random password per user, encrypted; existing ones kept unless `overwrite`."""
    recipients = read_recipients(repo_root)
    written = []
    for user in users:
        path = repo_root / password_source(user)
        if path.exists() and not overwrite:
            continue
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pyrage.encrypt((password + "\n").encode(), recipients))
        written.append(path)
    return written
