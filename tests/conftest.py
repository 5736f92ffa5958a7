"""Shared fixtures: the example repository, copied so a test may break it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPO_PARTS = ("customers", "policies", "inventory", "schemas", "secrets", "lab")


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A private copy of the example repository."""
    dest = tmp_path / "repo"
    dest.mkdir()
    for part in REPO_PARTS:
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, dest / part)
    return dest
