"""Run `relayops customer …` in-process on a copy of the example repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from customer.helpers import TODAY, Run
from relayops.cli import cli


@pytest.fixture
def run(example_repo: Path) -> Run:
    """`run("add-login", "acme", "x")` = `relayops customer --today TODAY add-login … --repo R`."""

    def invoke(*args: str, today: str = TODAY) -> Result:
        argv = ["customer", "--today", today, *args, "--repo", str(example_repo)]
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    return invoke
