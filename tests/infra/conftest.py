"""Infra tests: the example repository deployed on the lab, checked over SSH (testinfra)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import testinfra.host

from relayops.compile.files import HostConfig
from relayops.model import RelayHost
from support.deployed import Deployed, testinfra_host

RELAYS = ("relay1.relay.example.net", "relay2.relay.example.net")


@dataclass(frozen=True)
class Relay:
    host: testinfra.host.Host
    model: RelayHost
    config: HostConfig
    deployed: Deployed


@pytest.fixture(scope="session", params=RELAYS)
def relay(request: pytest.FixtureRequest, deployed: Deployed) -> Iterator[Relay]:
    name = str(request.param)
    model = next(h for h in deployed.target.inventory.hosts if h.name == name)
    host = testinfra_host(deployed.lab, name)
    yield Relay(host, model, deployed.target.configs[name], deployed)
