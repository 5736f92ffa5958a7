"""Pinned SSH host keys of a non-lab inventory: `inventory/<name>.known_hosts`.

The file sits next to the inventory and is reviewed like it; the deploy hands it to
pyinfra with strict checking, so an unknown or changed key stops the connection
instead of being trusted on first use. The operator fills it from each host's console
(or `ssh-keyscan`, with the fingerprint compared out of band). Lines that still hold
a placeholder, keys that do not decode, and hosts with no key are reported, and the
deploy refuses to start. Pure: text in, problems out.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from relayops.deploy.errors import DeployError

PLACEHOLDER = "REPLACE-WITH"  # what the committed template's key fields start with


@dataclass(frozen=True)
class HostKeyEntry:
    line: int
    hosts: tuple[str, ...]
    key_type: str
    key: str


def known_hosts_file(inventory_file: Path) -> Path:
    """`inventory/production.py` -> `inventory/production.known_hosts`."""
    return inventory_file.with_suffix(".known_hosts")


def parse(text: str) -> list[HostKeyEntry]:
    """The key lines (comments and blank lines aside); markers such as @revoked are kept out."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("@"):
            continue
        fields = line.split()
        hosts = tuple(fields[0].split(",")) if fields else ()
        key_type = fields[1] if len(fields) > 1 else ""
        key = fields[2] if len(fields) > 2 else ""
        entries.append(HostKeyEntry(number, hosts, key_type, key))
    return entries


def key_problem(entry: HostKeyEntry) -> str | None:
    """Why a key field is not a real public key of its type, or None."""
    if entry.key.startswith(PLACEHOLDER) or entry.key_type.startswith(PLACEHOLDER):
        return "still a placeholder: the operator must put the host's real key here"
    try:
        blob = base64.b64decode(entry.key, validate=True)
    except (binascii.Error, ValueError):
        return "the key is not base64"
    # The wire format starts with the key type as a length-prefixed string (RFC 4253 6.6).
    if len(blob) < 4:
        return "the key is truncated"
    (size,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + size].decode("ascii", "replace") != entry.key_type:
        return f"the key is not of type {entry.key_type}"
    return None


def _names(host: str) -> set[str]:
    """`[203.0.113.11]:22` and `203.0.113.11` name the same host on the default port."""
    if host.startswith("[") and host.endswith("]:22"):
        return {host, host[1:-4]}
    return {host}


def problems(text: str, ssh_hostnames: Iterable[str]) -> list[str]:
    """Everything that keeps this file from pinning every host; empty when it does."""
    found: list[str] = []
    entries = parse(text)
    good: set[str] = set()
    for entry in entries:
        reason = key_problem(entry)
        if reason:
            found.append(f"line {entry.line} ({','.join(entry.hosts)}): {reason}")
            continue
        for host in entry.hosts:
            good |= _names(host)
    for hostname in ssh_hostnames:
        if hostname not in good:
            found.append(f"no valid key for {hostname}")
    return found


def require_pinned(path: Path, ssh_hostnames: Sequence[str]) -> None:
    """Raise DeployError unless `path` pins a real key for every host."""
    if not path.is_file():
        raise DeployError(
            f"{path} is missing: pin the hosts' SSH keys next to the inventory "
            "(docs/ci.md, 'Host keys'); a deploy never trusts a key on first use"
        )
    found = problems(path.read_text(), ssh_hostnames)
    if found:
        lines = "\n".join(f"  {p}" for p in found)
        raise DeployError(f"{path}: host keys are not pinned:\n{lines}")
