"""What a host has now versus what the deploy wants: pure comparisons, no I/O.

The host's state comes from one command per host (`stat` and `sha1sum` over every
managed path, see `relayops.deploy.facts`), so a deploy that changes nothing costs
a handful of SSH round trips whatever the number of files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from relayops.compile.files import Directory, HostConfig, ManagedFile, MapCommand, SecretFile


class Kind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"


@dataclass(frozen=True)
class PathState:
    """One path on the host as `stat` and `sha1sum` saw it."""

    kind: Kind
    mode: int
    user: str
    group: str
    sha1: str | None = None  # files only


@dataclass(frozen=True)
class Wanted:
    """One file the deploy writes: content held in memory on the controller."""

    path: str
    content: bytes
    mode: int
    user: str
    group: str
    secret: bool = False
    # Written only when missing: the daemon rewrites it (Sentinel records its state there).
    seed: bool = False

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.content, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Change:
    """How a wanted file differs from the host: new content, or only owner/mode."""

    wanted: Wanted
    content: bool
    owner: bool
    mode: bool


def parse_states(output: Iterable[str]) -> dict[str, PathState]:
    """Parse `stat -c '%F|%a|%U|%G|%n'` lines, then `sha1sum` lines (`<hex>  <path>`).

    >>> lines = ["regular file|644|root|root|/etc/x", "da39a3ee5e6b4b0d  /etc/x"]
    >>> parse_states(lines)["/etc/x"].sha1
    'da39a3ee5e6b4b0d'
    """
    states: dict[str, PathState] = {}
    sums: dict[str, str] = {}
    for line in output:
        if "|" in line:
            kind_text, mode, user, group, path = line.split("|", 4)
            kind = Kind.DIRECTORY if kind_text == "directory" else Kind.FILE
            states[path] = PathState(kind, int(mode, 8), user, group)
        elif "  " in line:
            digest, _, path = line.partition("  ")
            sums[path] = digest
    for path, digest in sums.items():
        if path in states:
            old = states[path]
            states[path] = PathState(old.kind, old.mode, old.user, old.group, digest)
    return states


def file_changes(wanted: Iterable[Wanted], states: Mapping[str, PathState]) -> list[Change]:
    """The wanted files whose content, owner or mode differ on the host (missing: all three).

    A seed file's content is compared only to its absence: once there, it is its daemon's.
    """
    changes = []
    for item in wanted:
        now = states.get(item.path)
        if now is None or now.kind != Kind.FILE:
            changes.append(Change(item, content=True, owner=True, mode=True))
            continue
        change = Change(
            item,
            content=now.sha1 != item.sha1 and not item.seed,
            owner=(now.user, now.group) != (item.user, item.group),
            mode=now.mode != item.mode,
        )
        if change.content or change.owner or change.mode:
            changes.append(change)
    return changes


def directory_changes(
    directories: Iterable[Directory], states: Mapping[str, PathState]
) -> list[Directory]:
    out = []
    for item in directories:
        now = states.get(item.path)
        if (
            now is None
            or now.kind != Kind.DIRECTORY
            or (now.mode, now.user, now.group) != (item.mode, item.owner, item.group)
        ):
            out.append(item)
    return out


def wanted_files(config: HostConfig) -> list[Wanted]:
    return [Wanted(f.path, f.content, f.mode, f.owner, f.group) for f in config.files]


def wanted_secrets(config: HostConfig, plaintext: Mapping[str, bytes]) -> list[Wanted]:
    """SecretFiles with their decrypted content (`plaintext` by SecretFile.source)."""
    return [
        Wanted(s.path, plaintext[s.source], s.mode, s.owner, s.group, secret=True)
        for s in config.secrets
    ]


def map_db(item: ManagedFile) -> str:
    """The indexed file Postfix reads for a `hash:` map source."""
    return item.path + ".db"


def maps_to_index(
    config: HostConfig, changed: set[str], states: Mapping[str, PathState]
) -> list[tuple[MapCommand, str]]:
    """postmap/postalias runs: a changed source, or an index that is missing."""
    return [
        (f.map_command, f.path)
        for f in config.files
        if f.map_command is not None and (f.path in changed or map_db(f) not in states)
    ]


def reloads(
    config: HostConfig, changed: set[str], extra: Mapping[str, Iterable[str]] | None = None
) -> set[str]:
    """Services whose files changed (ManagedFile/SecretFile.reload, plus `extra` path->services)."""
    services: set[str] = set()
    entries: list[ManagedFile | SecretFile] = [*config.files, *config.secrets]
    for entry in entries:
        if entry.path in changed and entry.reload is not None:
            services.add(str(entry.reload))  # a Daemon is a StrEnum
    for path, names in (extra or {}).items():
        if path in changed:
            services.update(names)
    return services
