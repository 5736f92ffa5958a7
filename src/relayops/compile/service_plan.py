"""What a change does to each service of a host (`relayops plan`): start, reload, remove.

The same rule the deploy follows (deploy/services.py): a service whose files change is
reloaded, never restarted. A Postfix output instance (compile/instances.py) is its own
service, `postfix@<instance>`: a new sending IP starts a new instance, a changed class
reloads each instance alone, and a sending IP gone stops and removes its instance once
its queue is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relayops.compile.files import HostConfig

ServiceAction = Literal["start", "reload", "remove"]


@dataclass(frozen=True)
class ServiceChange:
    service: str
    action: ServiceAction


def _services(config: HostConfig | None) -> dict[str, dict[str, bytes]]:
    """Service name -> {path: content} of the files that reload it."""
    found: dict[str, dict[str, bytes]] = {}
    for item in config.files if config else ():
        if item.reload is not None:
            found.setdefault(str(item.reload), {})[item.path] = item.content
    return found


def service_changes(a: HostConfig | None, b: HostConfig | None) -> list[ServiceChange]:
    """Per service, what the deploy of `b` over `a` does; untouched services omitted.

    A host with no previous configuration (`a` None) starts everything.
    """
    before, after = _services(a), _services(b)
    changes: list[ServiceChange] = []
    for service in sorted(set(before) | set(after)):
        old, new = before.get(service), after.get(service)
        if old is None:
            changes.append(ServiceChange(service, "start"))
        elif new is None:
            changes.append(ServiceChange(service, "remove"))
        elif old != new:
            changes.append(ServiceChange(service, "reload"))
    return changes
