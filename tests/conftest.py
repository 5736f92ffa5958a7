"""Shared fixtures: the example repository, copied so a test may break it; the lab's
fixtures come from the plugin support.lab_fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.repo import copy_example

pytest_plugins = ["support.lab_fixtures"]


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A private copy of the example repository."""
    return copy_example(tmp_path / "repo")
