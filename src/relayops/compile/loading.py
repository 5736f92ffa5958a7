"""Load a repository for compiling: the same loader, without the cyclic GC's rescans."""

from __future__ import annotations

import gc
from pathlib import Path

from relayops.loader import LoadResult, load_repo


def load_frozen(root: Path) -> LoadResult:
    """`load_repo`, then move its objects out of the cyclic GC's reach.

    The loaded repository lives until the process exits and holds no garbage
    cycles; rescanning its millions of objects on every collection doubled the
    time of a 10,000-customer render (bench/render/RESULTS.md).
    """
    gc.disable()
    try:
        return load_repo(root)
    finally:
        gc.freeze()
        gc.enable()
