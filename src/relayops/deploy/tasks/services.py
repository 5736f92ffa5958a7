"""Start what is stopped, reload what changed, touch nothing else.

The decisions are pure (relayops.deploy.services); this module only emits the operations.

systemd where it runs (/run/systemd/system), else the init scripts: the lab's hosts
are chroots without systemd.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import server

from relayops.compile.files import Daemon
from relayops.deploy.hostplan import (
    BACKOFF_SERVICES,
    REDIS_SERVICE,
    SENTINEL_SERVICE,
    SENTINEL_SYSTEMD_UNIT,
    SYSTEMD_UNIT,
    start_position,
    systemd_unit,
)
from relayops.deploy.ordering import positioned
from relayops.deploy.services import (
    control_command,
    control_verb,
    policyd_restarts,
    service_actions,
)
from relayops.deploy.state import reloads
from relayops.deploy.tasks.policyd import needs_install
from relayops.deploy.tasks.prepare import HostRun


def changed_services(run: HostRun) -> set[str]:
    changed = reloads(run.plan.config, run.changed, run.plan.reload_extra)
    if REDIS_SERVICE in run.plan.services and not run.facts.redis_include:
        changed.add(REDIS_SERVICE)
    return changed


def actions(run: HostRun) -> list[tuple[str, str]]:
    restart = policyd_restarts(run.changed, new_code=needs_install(run))
    return service_actions(run.plan.services, run.running, changed_services(run), new_code=restart)


@deploy("Services")
def converge(run: HostRun) -> None:
    units = {SYSTEMD_UNIT: "relayops-policyd", SENTINEL_SYSTEMD_UNIT: SENTINEL_SERVICE}
    units |= {systemd_unit(name): name for name in (*BACKOFF_SERVICES, Daemon.MAILLOG.value)}
    changed_units = [name for path, name in units.items() if path in run.changed]
    if run.facts.systemd and changed_units:
        server.shell(
            name="systemd daemon-reload",
            commands=["systemctl daemon-reload", *(f"systemctl enable {n}" for n in changed_units)],
        )
    # Positions by start order across hosts: Redis starts before any host's policy daemon.
    for service, verb in positioned(host, actions(run), lambda item: start_position(item[0])):
        verb = control_verb(service, verb)
        command = control_command(service, verb, systemd=run.facts.systemd)
        server.shell(name=f"{verb.capitalize()} {service}", commands=[command])
