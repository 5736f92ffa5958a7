"""Configuration checks before any start or reload: a failure stops this host's deploy."""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.operations import server

from relayops.deploy.errors import DeployError
from relayops.deploy.hostplan import CHECKS
from relayops.deploy.tasks.prepare import HostRun
from relayops.deploy.tasks.services import actions
from relayops.deploy.tls import CERT_PATH, KEY_PATH


@deploy("Configuration checks")
def verify(run: HostRun) -> None:
    wanted = {w.path for w in run.plan.wanted}
    for path in (CERT_PATH, KEY_PATH):
        if path not in wanted and path not in run.states:
            raise DeployError(
                f"{run.plan.config.host}: {path} is missing; production certificates come from "
                "the ACME client (docs/deploy.md), which must have run once before the deploy"
            )
    touched = {service for service, _ in actions(run)}
    for service, command in CHECKS.items():
        if service in touched:
            server.shell(name=f"Check {service} configuration: {command}", commands=[command])
