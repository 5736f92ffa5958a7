"""The deploy's removal steps: facts, operations and the two calls deploys/relay.py makes.

    managed = record(run.plan, run.manifest)   # before any file is written
    ...                          # files, maps, checks, reloads
    remove(managed)              # after the services run on the new files

`record` makes sure the host's manifest lists every path this deploy is about to
write before writing it (an interrupted deploy leaves nothing unlisted); `remove`
deletes what the previous manifest listed and nothing wants any more, holds back a
customer's keys and mailboxes while its mail is queued (logged as `removal deferred`),
and leaves the manifest that lists what the host now holds. The decisions are pure
(relayops.deploy.removal); this module only reads the host and emits operations.
"""

from __future__ import annotations

import io
import logging
import shlex
import zlib
from collections.abc import Generator
from dataclasses import dataclass

from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.api.facts import FactBase
from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.operations import server

from relayops.compile.managed import Entry, Manifest
from relayops.deploy import instance_removal
from relayops.deploy.errors import DeployError
from relayops.deploy.hostplan import DEPLOY_DIRECTORIES, HostPlan
from relayops.deploy.manifest import MANIFEST_PATH, ManifestError, dumps, loads
from relayops.deploy.operations import directory_command
from relayops.deploy.ordering import positioned
from relayops.deploy.queue import COMMAND as QUEUE_COMMAND
from relayops.deploy.queue import QueueError, parse_queue
from relayops.deploy.removal import (
    DEFERRED,
    decide,
    deploy_manifest,
    needs_queue,
    removal_position,
    remove_command,
)

log = logging.getLogger("pyinfra")
_PRESENT = "relayops-manifest-present"
_STATE_DIR = next(d for d in DEPLOY_DIRECTORIES if d.path == "/var/lib/relayops")


class ManagedManifest(FactBase[str | None]):
    """The text of the host's manifest, None when there is none."""

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return f"if [ -f {quoted} ]; then echo {_PRESENT}; cat {quoted}; fi; true"

    def process(self, output: list[str]) -> str | None:
        if not output or output[0] != _PRESENT:
            return None
        return "\n".join(output[1:])


class QueueListing(FactBase[list[str]]):
    """`postqueue -j` lines and its exit status (parsed by relayops.deploy.queue)."""

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self) -> str:
        return QUEUE_COMMAND

    def process(self, output: list[str]) -> list[str]:
        return list(output)


class InstanceQueueCount(FactBase[list[str]]):
    """How many messages a removed Postfix output instance still holds (counted on disk)."""

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self, instance: str) -> str:  # pyinfra reserves `name`
        return instance_removal.count_command(instance)

    def process(self, output: list[str]) -> list[str]:
        return list(output)


@operation()
def write_manifest(content: bytes) -> Generator[StringCommand | FileUploadCommand, None, None]:
    """Replace the manifest atomically (written beside it, then renamed)."""
    d = _STATE_DIR
    temp = shlex.quote(MANIFEST_PATH + ".relayops-new")
    yield StringCommand(directory_command(d))
    yield StringCommand(f"install -m 0640 /dev/null {temp}")
    yield FileUploadCommand(io.BytesIO(content), MANIFEST_PATH + ".relayops-new")
    yield StringCommand(f"mv -f {temp} {shlex.quote(MANIFEST_PATH)}")


@operation()
def remove_entry(entry: Entry) -> Generator[StringCommand, None, None]:
    """Remove one path the previous deploy recorded and nothing wants any more."""
    yield StringCommand(remove_command(entry))


@dataclass
class HostManifest:
    previous: Manifest | None  # as the previous deploy left it
    wanted: Manifest
    on_host: Manifest | None  # as it will be once `record`'s operation ran


def manifest_command() -> str:
    """What reads the host's manifest (part of the deploy's one read of the host)."""
    return ManagedManifest().command(MANIFEST_PATH)


def record(plan: HostPlan, manifest: list[str]) -> HostManifest:
    """List what this deploy writes before it writes it; `manifest`: `manifest_command()`'s
    output lines."""
    text = ManagedManifest().process(manifest)
    try:
        previous = None if text is None else loads(text)
    except ManifestError as exc:
        raise DeployError(
            f"{host.name}: {exc}. The deploy removes only what that file lists, so it stops "
            "here: repair it, or delete it to start afresh (the next deploy then removes "
            "nothing and records what it writes)"
        ) from None
    wanted = deploy_manifest(plan)
    grown = wanted if previous is None else wanted.merged(previous)
    if grown != previous:
        write_manifest(name=f"Record managed paths in {MANIFEST_PATH}", content=dumps(grown))
    return HostManifest(previous, wanted, grown)


def remove(managed: HostManifest) -> None:
    """Remove what is no longer wanted, defer what waits on the queue, record the rest."""
    queue = None
    if needs_queue(managed.previous, managed.wanted):
        lines: list[str] = host.get_fact(QueueListing)
        try:
            queue = parse_queue(lines)
        except QueueError as exc:
            log.warning("%s%s: queue not read (%s)", host.print_prefix, DEFERRED, exc)
    removal = decide(managed.previous, managed.wanted, queue)
    names = instance_removal.removed_instances(removal.remove)
    counts: dict[str, int | None] = {}
    for name in names:
        counted: list[str] = host.get_fact(InstanceQueueCount, instance=name)
        counts[name] = instance_removal.parse_count(counted)
    customers = managed.previous.customers if managed.previous else {}
    removal, instances = instance_removal.hold_back(removal, counts, customers)
    for deferred in removal.deferred:
        log.warning("%s%s", host.print_prefix, deferred.line())
    # Output instances first: stopped (or flushed and kept) before their files go.
    for instance in positioned(host, instances, lambda i: zlib.crc32(i.name.encode())):
        if not instance.ready:
            log.warning("%s%s", host.print_prefix, instance.line())
        verb = "Remove" if instance.ready else "Flush (removal deferred)"
        server.shell(name=f"{verb} Postfix instance {instance.name}", commands=instance.commands())
    for entry in positioned(host, removal.remove, removal_position):
        who = f" of {entry.customer}" if entry.customer else ""
        remove_entry(name=f"Remove {entry.kind.value}{who} {entry.path}", entry=entry)
    if removal.manifest != managed.on_host:
        write_manifest(
            name=f"Update managed paths in {MANIFEST_PATH}", content=dumps(removal.manifest)
        )
