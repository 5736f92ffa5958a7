"""`relayops check` against the deployed lab: the positive run and one test per failure.

The example repository is published in the lab DNS and deployed once per session; each
negative test changes one thing on the lab, asserts the one check that fails and its
message, and restores the lab (proving with the same checks that it is healthy again).
"""

from __future__ import annotations

import pytest

from lab_checks.checking import CREDENTIALS, INVENTORY, ROOT, LabChecks
from relayops.checks.from_repo import read_credentials, targets_from_repo
from relayops.deploy.labdns import publishable
from relayops.deploy.runner import run_deploy
from relayops.deploy.target import load_target
from relayops.deploy.tls import LabCA
from relayops.lab.dns import reverse_zone
from relayops.lab.testing import Lab, lab

__all__ = ["lab"]


@pytest.fixture(scope="session")
def deployed_lab(lab: Lab) -> Lab:
    """The example repository's DNS published and the repository deployed (idempotent)."""
    target = load_target(ROOT, INVENTORY.stem)
    lab.dns.publish(publishable(target.repo, target.inventory, ROOT, reverse_zone(lab.topology)))
    result = run_deploy(INVENTORY, capture=True)
    if result.returncode != 0:
        raise AssertionError(f"deploy of the example repository failed:\n{result.output[-8000:]}")
    return lab


@pytest.fixture(scope="session")
def checks(deployed_lab: Lab) -> LabChecks:
    loaded = load_target(ROOT, INVENTORY.stem)
    ca_bundle = LabCA().cert_path
    target = targets_from_repo(
        loaded.repo,
        INVENTORY.stem,
        credentials=read_credentials(CREDENTIALS),
        ca_bundle=str(ca_bundle),
    )
    return LabChecks(deployed_lab, target, deployed_lab.topology.dns.address, ca_bundle)
