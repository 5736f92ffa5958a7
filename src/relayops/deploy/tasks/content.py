"""Directories, files (compiled, secrets, certificate, service files) and map indexes."""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import server

from relayops.deploy.operations import managed_directory, managed_file
from relayops.deploy.ordering import path_position, positioned
from relayops.deploy.state import maps_to_index
from relayops.deploy.tasks.prepare import HostRun


@deploy("Directories, files and maps")
def apply(run: HostRun) -> None:
    for directory in positioned(host, run.directories, lambda d: path_position(d.path)):
        managed_directory(name=f"Directory {directory.path}", directory=directory)
    for change in positioned(host, run.changes, lambda c: path_position(c.wanted.path)):
        what = "content" if change.content else "owner/mode"
        managed_file(name=f"File {change.wanted.path} ({what})", change=change)
    maps = maps_to_index(run.plan.config, run.changed, run.states)
    for command, path in positioned(host, maps, lambda m: path_position(m[1])):
        server.shell(name=f"{command.value} {path}", commands=[f"{command.value} {path}"])
