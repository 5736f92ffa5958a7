"""End-to-end tests on the lab: mail through deployed relays, quotas, redeploys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.resolver
import pytest

from support.deployed import Deployed, restore_example
from support.lab import Lab


@pytest.fixture(scope="module")
def example_afterwards(lab: Lab) -> Iterator[None]:
    """Deploy the example repository again once a module that deployed variants is done."""
    yield
    restore_example(lab)


@pytest.fixture
def variant_root(tmp_path: Path, deployed: Deployed) -> Path:
    """Where a test writes a changed copy of the example repository."""
    return tmp_path / "repo"


@pytest.fixture(scope="module")
def lab_dns(deployed: Deployed) -> Iterator[None]:
    """dkimpy, pyspf and authheaders resolve through dnspython's default resolver: the lab's."""
    saved = dns.resolver.default_resolver
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [deployed.lab.topology.dns.address]
    dns.resolver.default_resolver = resolver
    try:
        yield
    finally:
        dns.resolver.default_resolver = saved
