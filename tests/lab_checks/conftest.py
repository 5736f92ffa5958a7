"""`relayops check` against the deployed lab: the positive run and one test per failure.

The example repository is published in the lab DNS and deployed once per session (the
deploy's `deployed` fixture); each negative test changes one thing on the lab, asserts the
one check that fails and its message, and restores the lab (proving with the same checks
that it is healthy again).
"""

from __future__ import annotations

import pytest

from lab_checks.checking import CREDENTIALS, LabChecks
from relayops.checks.from_repo import read_credentials, targets_from_repo
from support.deployed import Deployed


@pytest.fixture(scope="session")
def checks(deployed: Deployed) -> LabChecks:
    target = targets_from_repo(
        deployed.target.repo,
        deployed.target.inventory,
        credentials=read_credentials(CREDENTIALS),
        ca_bundle=str(deployed.ca_file),
    )
    nameserver = deployed.lab.topology.dns.address
    return LabChecks(deployed.lab, target, nameserver, deployed.ca_file)
