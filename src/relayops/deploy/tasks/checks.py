"""Configuration checks before any start or reload: a failure stops this host's deploy."""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import server

from relayops.deploy.errors import DeployError
from relayops.deploy.hostplan import CHECKS, start_position
from relayops.deploy.instances import check_command, is_instance
from relayops.deploy.ordering import positioned
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
    # Each Postfix output instance on its own (the submission instance's check is above).
    for service in positioned(host, [s for s in touched if is_instance(s)], start_position):
        command = check_command(service)
        server.shell(name=f"Check {service} configuration: {command}", commands=[command])
