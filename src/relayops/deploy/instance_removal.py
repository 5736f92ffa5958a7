"""Removing a Postfix output instance whose sending IP is gone: stop it, then its files. Pure.

The compiled configuration no longer lists the instance, so the submission instance
(reloaded earlier in the deploy) hands it nothing new. What it still holds would be
lost with its queue directory: an instance whose queue is not empty (or could not be
counted) keeps running with all its files, is flushed, and the deploy logs
`removal deferred`, like a customer's keys while its mail is queued; a later deploy
removes it once the queue is empty. An empty one is stopped and its queue and state
directories deleted with everything Postfix made in them, then the removal proceeds
with its recorded files.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from relayops.backoff.names import INSTANCE_PREFIX
from relayops.compile.managed import Entry, manifest
from relayops.deploy.instances import stop_command
from relayops.deploy.removal import DEFERRED, Removal

_INSTANCE_PATH = re.compile(
    rf"^/(?:etc|var/spool|var/lib)/(?P<name>{re.escape(INSTANCE_PREFIX)}[^/]+)(?:/|$)"
)
# Postfix's queues that hold mail (postqueue(1)); bounce/defer/trace hold only logs of it.
MAIL_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")
COUNT_PREFIX = "relayops-queued="


def instance_of(path: str) -> str | None:
    """`/var/spool/postfix-ip-x/…` -> `postfix-ip-x`; None for any other path."""
    match = _INSTANCE_PATH.match(path)
    return match["name"] if match else None


def removed_instances(entries: Iterable[Entry]) -> list[str]:
    """Instances whose main.cf is being removed: their sending IP left the host."""
    return sorted(
        name
        for e in entries
        if (name := instance_of(e.path)) is not None and e.path == f"/etc/{name}/main.cf"
    )


def count_command(name: str) -> str:
    """Messages in the instance's queue, counted on disk (it need not be listed or running)."""
    spool = shlex.quote(f"/var/spool/{name}")
    queues = " ".join(f"{spool}/{q}" for q in MAIL_QUEUES)
    return f"echo {COUNT_PREFIX}$(find {queues} -type f 2>/dev/null | wc -l)"


def parse_count(lines: Iterable[str]) -> int | None:
    """The count `count_command` printed; None when the output is not that."""
    for line in lines:
        if line.startswith(COUNT_PREFIX) and line[len(COUNT_PREFIX) :].strip().isdigit():
            return int(line[len(COUNT_PREFIX) :].strip())
    return None


@dataclass(frozen=True)
class InstanceRemoval:
    name: str
    queued: int | None  # None: the queue could not be counted

    @property
    def ready(self) -> bool:
        return self.queued == 0

    def line(self) -> str:
        """What the deploy logs for a held-back instance (after the host's prefix)."""
        why = (
            "its queue could not be read"
            if self.queued is None
            else f"{self.queued} message(s) still queued"
        )
        return f"{DEFERRED}: Postfix instance {self.name} ({why}; flushed, kept running)"

    def commands(self) -> list[str]:
        """Stop an empty instance and delete its queue and state; flush one that is not."""
        config = f"/etc/{self.name}"
        if not self.ready:
            return [f"postfix -c {shlex.quote(config)} flush || true"]
        spool, state = (shlex.quote(f"/var/{d}/{self.name}") for d in ("spool", "lib"))
        return [stop_command(config), f"rm -rf -- {spool} {state}"]


def hold_back(
    removal: Removal, queued: Mapping[str, int | None], customers: Mapping[str, tuple[str, ...]]
) -> tuple[Removal, list[InstanceRemoval]]:
    """Keep every entry of an instance that is not ready; the instances in name order."""
    decisions = [InstanceRemoval(n, queued.get(n)) for n in removed_instances(removal.remove)]
    held = {d.name for d in decisions if not d.ready}
    kept = [e for e in removal.remove if instance_of(e.path) in held]
    remove = [e for e in removal.remove if instance_of(e.path) not in held]
    return (
        Removal(remove, removal.deferred, removal.manifest.merged(manifest(kept, customers))),
        decisions,
    )
