"""Where the repository keeps its encrypted material: one definition for validate,
`relayops dkim`, the compiler and the deploy."""

from __future__ import annotations

DKIM_DIR = "secrets/dkim"
RECIPIENTS_FILE = "secrets/recipients.txt"
TRACE_KEY_SOURCE = "secrets/trace.key.age"  # the stamp key (`relayops feedback keygen`)


def encrypted_key_source(domain: str, selector: str) -> str:
    """Where `relayops dkim generate` stores the age-encrypted private key."""
    return f"{DKIM_DIR}/{domain}.{selector}.key.age"


def public_key_source(domain: str, selector: str) -> str:
    """The public half, read by `plan` (the DNS record) and `check`."""
    return f"{DKIM_DIR}/{domain}.{selector}.pub.pem"
