"""pytest plugin (loaded by tests/conftest.py): the session fixtures `lab` and `deployed`.

A lab test that cannot run fails loudly: the lab needs root, and a suite that quietly
skips half its lab tests looks green. Set RELAYOPS_SKIP_LAB=1 to skip them on purpose;
each is then reported as skipped with that reason (`-ra` lists them).

Every test that uses `lab` or `deployed` must carry the `lab` marker, so that
`-m "not lab"` really leaves the lab alone; collection stops when one does not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported in the fixtures: sessions without the lab never load them
    from support.deployed import Deployed
    from support.lab import Lab

SKIP_ENV = "RELAYOPS_SKIP_LAB"
LAB_FIXTURES = frozenset({"lab", "deployed"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("lab") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests using the lab must be marked `lab` (pytestmark = pytest.mark.lab): "
            + ", ".join(unmarked)
        )


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The shared lab (index 0), up for the whole test session."""
    from support.lab import ensure_lab, hold, release

    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"lab tests skipped on purpose ({SKIP_ENV}=1)")
    if os.geteuid() != 0:
        pytest.fail(
            "the lab needs root (network namespaces, mounts): run the suite as root, "
            f'deselect the lab tests with -m "not lab", or set {SKIP_ENV}=1 to skip them',
            pytrace=False,
        )
    handle = hold(0)
    running, _ = ensure_lab()
    try:
        yield running
    finally:
        release(running, handle)


@pytest.fixture(scope="session")
def deployed(lab: Lab) -> Deployed:
    """The example repository deployed on the lab (once per session)."""
    from support.deployed import EXAMPLE, publish_and_deploy

    return publish_and_deploy(lab, EXAMPLE)
