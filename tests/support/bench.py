"""The benchmark scripts under bench/ loaded as modules, for the tests that smoke-test them
(they are scripts beside their figures, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def bench_module(name: str, topic: str = "policyd") -> ModuleType:
    """bench/TOPIC/NAME.py, imported as `bench_NAME`."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / topic / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
