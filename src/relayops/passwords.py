"""New SMTP AUTH passwords and the Dovecot hash stored in the customer file.

Scheme: {SHA512-CRYPT} (glibc crypt `$6$`), the one the repository's logins use and
that Dovecot 2.3 verifies with the system's crypt(3). 5000 rounds, a 16-character
salt: exactly what `doveadm pw -s SHA512-CRYPT` writes. Dovecot checks the password
on every SMTP AUTH, and relay clients authenticate per connection, so the hash must
stay cheap to verify; the password is what makes it strong (192 random bits), not
the hash's cost. {ARGON2ID} would cost 64 MiB and tens of milliseconds per AUTH in
Dovecot's auth process (docs/customers.md).

passlib's implementation via libpass, its maintained fork (same `passlib` import):
passlib 1.7 itself is unmaintained and imports the `crypt` module Python 3.13 removed.
"""

from __future__ import annotations

import secrets

from passlib.hash import sha512_crypt

SCHEME = "SHA512-CRYPT"
ROUNDS = 5000  # crypt(3)'s default: the hash then carries no `rounds=` field
PASSWORD_BYTES = 24  # 192 bits of entropy, 32 URL-safe characters


def new_password() -> str:
    """A random password an application stores in its SMTP settings."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def dovecot_hash(password: str) -> str:
    """`{SHA512-CRYPT}$6$<salt>$<hash>`, as Dovecot's passwd-file expects it."""
    hashed: str = sha512_crypt.using(rounds=ROUNDS).hash(password)
    return "{" + SCHEME + "}" + hashed
