"""The example repository of this checkout, and private copies a test may break."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a repository holds (the engine under src/ is not part of it).
REPO_PARTS = ("customers", "policies", "inventory", "schemas", "secrets", "lab")


def copy_example(dest: Path) -> Path:
    """A private copy of the example repository (to change a quota, a status...)."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in REPO_PARTS:
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, dest / part)
    return dest
