"""Redis on the relay that keeps the shared quota counters (inventory: relayops_shared_counters)."""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.operations import server

from relayops.deploy.counters import INCLUDE_LINE, REDIS_DROPIN, REDIS_MAIN
from relayops.deploy.hostplan import REDIS_SERVICE
from relayops.deploy.tasks.prepare import HostRun


@deploy("Shared counters Redis")
def configure(run: HostRun) -> None:
    if REDIS_SERVICE not in run.plan.services:
        return
    if not run.facts.redis_include:
        server.shell(
            name=f"Include {REDIS_DROPIN} from {REDIS_MAIN}",
            commands=[f"echo '{INCLUDE_LINE}' >> {REDIS_MAIN}"],
        )
