"""Where the real bounce corpus is, and how to load the agreement script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    """194 real bounces and reports (sisimai's set-of-emails, BSD-2; README.md there),
    kept in the repository so a fresh clone needs nothing beside it."""
    return Path(__file__).parent / "samples"


def agreement_module() -> ModuleType:
    """bench/feedback/agreement.py: the one definition of how agreement is counted."""
    name = "feedback_agreement"
    if name in sys.modules:
        return sys.modules[name]
    path = REPO / "bench" / "feedback" / "agreement.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
