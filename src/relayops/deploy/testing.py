"""Test helpers for deploy, infra and end-to-end tests on the lab.

In a conftest.py::

    from relayops.deploy.testing import deployed, lab  # noqa: F401  (session fixtures)

`deployed` publishes the example repository's DNS records in the lab DNS and deploys
the example repository once per test session; tests that deploy something else
call `restore_example()` when they are done.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from relayops.deploy.labdns import publishable
from relayops.deploy.runner import ENGINE_ROOT, DeployResult, run_deploy
from relayops.deploy.target import LAB_INVENTORY, Target, load_target
from relayops.deploy.tls import LabCA
from relayops.lab.dns import reverse_zone
from relayops.lab.testing import Lab, lab

if TYPE_CHECKING:
    import testinfra.host

__all__ = ["Deployed", "deployed", "lab"]

EXAMPLE = ENGINE_ROOT
REPO_PARTS = ("customers", "policies", "inventory", "schemas", "secrets", "lab")


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


def copy_example(dest: Path) -> Path:
    """A private copy of the example repository (to change a quota, a status...)."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in REPO_PARTS:
        shutil.copytree(EXAMPLE / part, dest / part)
    return dest


@pytest.fixture(scope="session")
def deployed(lab: Lab) -> Iterator[Deployed]:
    """The example repository deployed on the lab (once per session)."""
    yield publish_and_deploy(lab, EXAMPLE)


def testinfra_host(lab: Lab, name: str) -> testinfra.host.Host:
    """A testinfra host (`paramiko://`) for lab host `name`: root, lab key, host key checked."""
    import testinfra

    address = lab.host(name).address
    host = testinfra.get_host(f"paramiko://root@{address}", ssh_identity_file=str(lab.ssh_key))
    backend: Any = host.backend
    # The paramiko backend would accept any host key; use the lab's verified client instead.
    backend.__dict__["client"] = lab.ssh(name)
    return host
