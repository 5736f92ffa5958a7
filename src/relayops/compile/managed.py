"""The paths a host holds because of relayops, and which of them a change removes: pure.

One source for `relayops plan` and the deploy: the plan compares the manifests of the
base and head configs, the deploy compares the manifest it left on the host last time
with the one it wants now, both through `removals()`. A path is only ever removed
because an earlier manifest listed it: nothing the deploy did not put there.

Each entry names the customer whose data it is (DKIM keys, their directory, mailboxes);
the deploy holds those back while the host's queue still has the customer's mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from relayops.compile.files import HostConfig
from relayops.compile.opendkim import KEY_DIR


class EntryKind(StrEnum):
    FILE = "file"  # removed with `rm -f`
    DIRECTORY = "directory"  # removed only when empty
    MAILBOX = "mailbox"  # a login's mail: removed with everything in it


@dataclass(frozen=True, order=True)
class Entry:
    path: str
    kind: EntryKind
    customer: str | None = None  # whose data: its queued mail holds the removal back


@dataclass(frozen=True)
class Manifest:
    """Entries by path plus each owning customer's sender domains (to search the queue)."""

    entries: tuple[Entry, ...] = ()
    customers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def paths(self) -> set[str]:
        return {e.path for e in self.entries}

    def merged(self, other: Manifest) -> Manifest:
        """Both manifests' entries (this one's wins for a path in both) and customers."""
        entries = {e.path: e for e in other.entries} | {e.path: e for e in self.entries}
        customers = {**other.customers, **self.customers}
        return manifest(entries.values(), customers)


def manifest(entries: Iterable[Entry], customers: Mapping[str, Iterable[str]]) -> Manifest:
    """A Manifest sorted by path, one entry per path (the last given wins), keeping only
    the customers some entry names."""
    items = tuple(sorted({e.path: e for e in entries}.values(), key=lambda e: e.path))
    owners = {e.customer for e in items if e.customer is not None}
    return Manifest(items, {c: tuple(sorted(set(customers.get(c, ())))) for c in sorted(owners)})


def _key_owners(config: HostConfig) -> dict[str, str]:
    """Key directory (KEY_DIR/<domain>) -> customer, from the host's tenants."""
    return {
        f"{KEY_DIR}/{domain}": tenant.customer
        for tenant in config.tenants
        for domain in tenant.domains
    }


def _owner(path: str, key_owners: Mapping[str, str]) -> str | None:
    directory = path if path in key_owners else path.rpartition("/")[0]
    return key_owners.get(directory)


def compiled_manifest(config: HostConfig) -> Manifest:
    """What the compiled config puts on the host: files, secrets, directories, mailboxes."""
    owners = _key_owners(config)
    entries = [Entry(f.path, EntryKind.FILE) for f in config.files]
    entries += [Entry(s.path, EntryKind.FILE, _owner(s.path, owners)) for s in config.secrets]
    entries += [
        Entry(d.path, EntryKind.DIRECTORY, _owner(d.path, owners)) for d in config.directories
    ]
    entries += [Entry(m.path, EntryKind.MAILBOX, m.customer) for m in config.mailboxes]
    return manifest(entries, {t.customer: t.domains for t in config.tenants})


_ORDER = {EntryKind.FILE: 0, EntryKind.MAILBOX: 1, EntryKind.DIRECTORY: 2}


def removals(previous: Manifest, wanted: Manifest) -> list[Entry]:
    """Entries of `previous` that `wanted` no longer has, in the order to remove them.

    Files first, then mailboxes, then directories deepest first, so a directory is
    empty by the time its turn comes.

    >>> old = manifest([Entry("/a", EntryKind.DIRECTORY), Entry("/a/k", EntryKind.FILE)], {})
    >>> [e.path for e in removals(old, Manifest())]
    ['/a/k', '/a']
    """
    keep = wanted.paths()
    gone = [e for e in previous.entries if e.path not in keep]
    return sorted(gone, key=lambda e: (_ORDER[e.kind], -e.path.count("/"), e.path))
