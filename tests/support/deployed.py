"""The example repository published in the lab DNS and deployed, for the deploy, infra
and end-to-end tests (the `deployed` fixture of `support.lab_fixtures`); tests that
deploy something else call `restore_example()` when they are done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relayops.deploy.runner import ENGINE_ROOT, DeployResult, run_deploy
from relayops.deploy.target import LAB_INVENTORY, Target, load_target
from relayops.lab.dns import reverse_zone
from relayops.lab.publish import publishable
from relayops.labca import LabCA
from support.lab import Lab
from support.repo import copy_example

if TYPE_CHECKING:
    import testinfra.host

EXAMPLE = ENGINE_ROOT
__all__ = ["EXAMPLE", "Deployed", "copy_example", "publish_and_deploy", "restore_example"]


@dataclass(frozen=True)
class Deployed:
    lab: Lab
    root: Path  # the repository deployed
    target: Target
    result: DeployResult

    @property
    def ca_file(self) -> Path:
        return LabCA().cert_path

    def relay_names(self) -> list[str]:
        return [h.name for h in self.target.inventory.hosts]


def publish_and_deploy(lab: Lab, root: Path) -> Deployed:
    """Publish `root`'s DNS records in the lab and deploy it with its lab inventory."""
    target = load_target(root, LAB_INVENTORY)
    lab.dns.publish(publishable(target.repo, target.inventory, root, reverse_zone(lab.topology)))
    result = run_deploy(root / "inventory" / f"{LAB_INVENTORY}.py", capture=True)
    if result.returncode != 0:
        raise AssertionError(f"deploy of {root} failed:\n{result.output[-8000:]}")
    return Deployed(lab, root, target, result)


def restore_example(lab: Lab) -> Deployed:
    return publish_and_deploy(lab, EXAMPLE)


def testinfra_host(lab: Lab, name: str) -> testinfra.host.Host:
    """A testinfra host (`paramiko://`) for lab host `name`: root, lab key, host key checked."""
    import testinfra

    address = lab.host(name).address
    host = testinfra.get_host(f"paramiko://root@{address}", ssh_identity_file=str(lab.ssh_key))
    backend: Any = host.backend
    # The paramiko backend would accept any host key; use the lab's verified client instead.
    backend.__dict__["client"] = lab.ssh(name)
    return host
