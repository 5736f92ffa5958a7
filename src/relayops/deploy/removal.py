"""What a deploy removes from a host, and what it holds back: pure, no I/O.

Inputs: the manifest the previous deploy left on the host (None: there is none yet),
the manifest this deploy wants, and the host's queue (None: it could not be read).
A path is removed only if the previous manifest lists it and the wanted one does not
(`compile.managed.removals`, the same function `relayops plan` shows). A customer's
keys and mailboxes wait while the queue still holds mail from the customer's domains;
they stay in the manifest the deploy writes, so a later deploy removes them.
"""

from __future__ import annotations

import re
import shlex
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from relayops.compile.managed import Entry, EntryKind, Manifest, compiled_manifest, manifest
from relayops.compile.managed import removals as manifest_removals
from relayops.deploy.counters import REDIS_DROPIN
from relayops.deploy.hostplan import HostPlan
from relayops.deploy.queue import Queued, queued_per_customer
from relayops.deploy.state import map_db

DEFERRED = "removal deferred"  # the words of the deploy's log line, read back below
_DEFERRED_LINE = re.compile(rf"\[(?P<host>[^\]]+)\] {DEFERRED}: (?P<what>.+)$")


@dataclass(frozen=True)
class Deferred:
    entry: Entry
    queued: int | None  # the customer's queued messages; None: the queue could not be read

    def reason(self) -> str:
        if self.queued is None:
            return f"the queue could not be read, {self.entry.customer}'s mail may still be there"
        return f"{self.queued} message(s) of {self.entry.customer} still queued"

    def line(self) -> str:
        """What the deploy logs after the host's prefix (`[relay1...] `)."""
        return f"{DEFERRED}: {self.entry.kind.value} {self.entry.path} ({self.reason()})"


def deferred_in(output: str) -> dict[str, list[str]]:
    """Host -> what the deploy deferred, read back from its output (`relayops deploy --json`).

    >>> deferred_in(" [r1] removal deferred: mailbox /var/vmail/x (2 message(s) of c still queued)")
    {'r1': ['mailbox /var/vmail/x (2 message(s) of c still queued)']}
    """
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = _DEFERRED_LINE.search(line)
        if match:
            found.setdefault(match["host"], []).append(match["what"])
    return found


@dataclass(frozen=True)
class Removal:
    remove: list[Entry]  # in removal order
    deferred: list[Deferred]
    manifest: Manifest  # what the host holds afterwards: wanted plus the deferred entries


# Not recorded, so never removed: redis.conf keeps including the drop-in, which names the
# ACL file and TLS files beside it, and Redis would not start again without them. Moving
# the counters to another host is a manual step (docs/deploy.md).
UNRECORDED_DIR = "/etc/redis/"
UNRECORDED = frozenset({REDIS_DROPIN})


def _unrecorded(path: str) -> bool:
    return path in UNRECORDED or path.startswith(UNRECORDED_DIR)


def deploy_manifest(plan: HostPlan) -> Manifest:
    """The compiled manifest plus what only the deploy writes (map indexes, TLS, service files)."""
    compiled = compiled_manifest(plan.config)
    extra = [Entry(w.path, EntryKind.FILE) for w in plan.wanted if not _unrecorded(w.path)]
    extra += [Entry(map_db(f), EntryKind.FILE) for f in plan.config.files if f.map_command]
    extra += [Entry(d.path, EntryKind.DIRECTORY) for d in plan.directories]
    return compiled.merged(manifest(extra, {}))


def needs_queue(previous: Manifest | None, wanted: Manifest) -> bool:
    """Whether any removal waits on a customer's mail (only then is the queue read)."""
    if previous is None:
        return False
    gone = manifest_removals(previous, wanted)
    return any(e.customer is not None and not _unrecorded(e.path) for e in gone)


def decide(previous: Manifest | None, wanted: Manifest, queue: Sequence[Queued] | None) -> Removal:
    """Entries to remove now, entries deferred (and why), and the manifest to leave behind.

    >>> old = manifest([Entry("/var/vmail/x", EntryKind.MAILBOX, "c")], {"c": ["c.example"]})
    >>> busy = [Queued("1", "hold", "a@c.example")]
    >>> [d.reason() for d in decide(old, Manifest(), busy).deferred]
    ['1 message(s) of c still queued']
    >>> decide(old, Manifest(), []).remove
    [Entry(path='/var/vmail/x', kind=<EntryKind.MAILBOX: 'mailbox'>, customer='c')]
    """
    if previous is None:
        return Removal([], [], wanted)
    counts = queued_per_customer(queue, previous.customers) if queue is not None else None
    remove: list[Entry] = []
    deferred: list[Deferred] = []
    for entry in manifest_removals(previous, wanted):
        if _unrecorded(entry.path):
            continue  # listed by an older deploy: forgotten, not removed
        if entry.customer is None:
            remove.append(entry)
            continue
        queued = None if counts is None else counts.get(entry.customer, 0)
        if queued == 0:
            remove.append(entry)
        else:
            deferred.append(Deferred(entry, queued))
    kept = manifest([d.entry for d in deferred], previous.customers)
    return Removal(remove, deferred, wanted.merged(kept))


def removal_position(entry: Entry) -> int:
    """A pyinfra loop position in removal order (files, mailboxes, then deepest directory)."""
    rank = {EntryKind.FILE: 0, EntryKind.MAILBOX: 1, EntryKind.DIRECTORY: 2}[entry.kind]
    depth = min(entry.path.count("/"), 255)
    return (rank << 40) | ((255 - depth) << 32) | zlib.crc32(entry.path.encode())


def remove_command(entry: Entry) -> str:
    """The shell command for one entry: never more than the entry itself.

    A file: `rm -f` (a directory there is left alone); a directory: only if empty;
    a mailbox: the login's directory with all its mail.
    """
    path = shlex.quote(entry.path)
    if entry.kind is EntryKind.FILE:
        return f"if [ ! -d {path} ]; then rm -f -- {path}; fi"
    if entry.kind is EntryKind.DIRECTORY:
        return f"if [ -d {path} ]; then rmdir --ignore-fail-on-non-empty -- {path}; fi"
    return f"rm -rf -- {path}"
