"""Where the real bounce corpus is, and how to load the agreement script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    """`shared/` beside the checkout (CI, /work/main); for a worktree nested deeper
    (/work/wt/NAME), beside the nearest ancestor that has it."""
    brief = Path(__file__).parents[2].parent / "shared" / "corpus" / "feedback"
    if brief.is_dir():
        return brief
    for base in REPO.parents:
        candidate = base / "shared" / "corpus" / "feedback"
        if candidate.is_dir():
            return candidate
    return brief


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
