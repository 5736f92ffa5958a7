"""Which test sessions use a lab: each holds a shared flock on /run/relayops-lab<N>.users.

`relayops lab down` refuses while one is held; the tests' lab fixture (tests/support)
takes the lock. Kept here, apart from the tests, because the CLI needs it and pytest
is no dependency of the shipped package.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO


def users_path(index: int) -> Path:
    """Test sessions using lab `index` hold a shared flock on this file."""
    return Path(f"/run/relayops-lab{index}.users")


def hold(index: int) -> IO[str]:
    """Take the shared lock; it is held until the returned handle is closed or unlocked."""
    handle = users_path(index).open("w")
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def in_use_by_tests(index: int = 0) -> bool:
    """True while a test session holds lab `index`."""
    path = users_path(index)
    if not path.exists():
        return False
    with path.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
