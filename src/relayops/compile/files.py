"""What the compiler hands to `render`, `plan` and the deploy: files per host, nothing else.

A HostConfig is plain data. The deploy uploads each ManagedFile byte for byte,
runs `postmap`/`postalias` on maps, and reloads the named services when a file
changed; a SecretFile is decrypted on the controller from its `source` (an age
file under `secrets/`) so no private key ever appears in rendered output.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Daemon(StrEnum):
    """Daemons a changed file must reload (service names of Debian's init scripts)."""

    POSTFIX = "postfix"
    OPENDKIM = "opendkim"
    DOVECOT = "dovecot"
    POLICYD = "relayops-policyd"
    MAILLOG = "relayops-maillog"  # the follower of Postfix's logs (feedback/follow.py)


class MapCommand(StrEnum):
    """How Postfix indexes a map source file (`hash:` maps need a .db beside the source)."""

    POSTMAP = "postmap"
    POSTALIAS = "postalias"


@dataclass(frozen=True)
class ManagedFile:
    path: str  # absolute path on the relay host
    content: bytes
    mode: int
    owner: str
    group: str
    # A Daemon, or `postfix@<instance>` for a Postfix output instance (compile/instances.py).
    reload: Daemon | str | None
    map_command: MapCommand | None = None

    def manifest(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "mode": f"{self.mode:04o}",
            "owner": self.owner,
            "group": self.group,
            "reload": str(self.reload) if self.reload else None,
            "map_command": self.map_command.value if self.map_command else None,
        }


@dataclass(frozen=True)
class SecretFile:
    """A file whose plaintext exists only on the controller during a deploy and on the host."""

    path: str
    source: str  # repository-relative path of the age-encrypted content
    mode: int
    owner: str
    group: str
    reload: Daemon | None

    def manifest(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source,
            "mode": f"{self.mode:04o}",
            "owner": self.owner,
            "group": self.group,
            "reload": self.reload.value if self.reload else None,
        }


@dataclass(frozen=True)
class Directory:
    path: str
    mode: int
    owner: str
    group: str

    def manifest(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "mode": f"{self.mode:04o}",
            "owner": self.owner,
            "group": self.group,
        }


@dataclass(frozen=True)
class Mailbox:
    """A customer's IMAP mailbox, shared by its logins and its notice address (mailbox.py).
    Dovecot makes it at first use; the deploy removes it once the customer is no longer
    served (terminated or gone), see compile/managed.py."""

    path: str
    address: str  # <customer>@MAILBOX_DOMAIN, where notices are delivered over LMTP
    customer: str


@dataclass(frozen=True)
class Tenant:
    """A customer the host serves and its sender domains (ASCII): the host's queue is searched
    for mail from these domains before the customer's keys and mailboxes are removed."""

    customer: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class HostConfig:
    """Everything one relay host gets, sorted by path so output is deterministic."""

    host: str
    fqdn: str
    files: tuple[ManagedFile, ...]
    secrets: tuple[SecretFile, ...]
    directories: tuple[Directory, ...]
    mailboxes: tuple[Mailbox, ...] = ()
    tenants: tuple[Tenant, ...] = ()

    def file(self, path: str) -> ManagedFile:
        for item in self.files:
            if item.path == path:
                return item
        raise KeyError(f"{self.host} has no managed file {path}")

    def manifest(self) -> dict[str, Any]:
        """Metadata of every entry (modes, owners, reloads, secret sources) for review and diff."""
        return {
            "host": self.host,
            "fqdn": self.fqdn,
            "directories": [d.manifest() for d in self.directories],
            "files": [f.manifest() for f in self.files],
            "secrets": [s.manifest() for s in self.secrets],
        }
