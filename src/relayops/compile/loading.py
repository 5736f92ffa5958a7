"""Load a repository for compiling: the same loader, then its objects frozen out of the GC."""

from __future__ import annotations

import gc
from pathlib import Path

from relayops.loader import LoadResult, load_repo


def load_frozen(root: Path, *, require_dkim_keys: bool = True) -> LoadResult:
    """`load_repo`, then move its objects out of the cyclic GC's reach.

    `load_repo` already pauses the GC while it loads (and restores the caller's
    setting). The loaded repository lives until the process exits and holds no
    garbage cycles; rescanning its millions of objects on every later collection
    doubled the time of a 10,000-customer render (bench/render/RESULTS.md).
    """
    result = load_repo(root, require_dkim_keys=require_dkim_keys)
    gc.freeze()
    return result
