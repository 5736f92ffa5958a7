"""Find and stop the lab's processes: those in its namespaces or chrooted in its state dir."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from relayops.lab.mounts import is_under
from relayops.lab.runner import Runner


def pids_in_netns(runner: Runner, namespace: str) -> set[int]:
    out = runner.run(["ip", "netns", "pids", namespace], check=False).stdout
    return {int(p) for p in out.split() if p.isdigit()}


def pids_rooted_under(top: Path) -> set[int]:
    """Processes whose root directory (chroot) lies under `top`."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            root = os.readlink(entry / "root")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        if is_under(root, top):
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as gone: its parent will reap it.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop(pids: Iterable[int], *, grace: float = 3.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL whatever is left."""
    pending = {p for p in pids if p != os.getpid()}
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        pending = {p for p in pending if _alive(p)}
        if pending:
            time.sleep(0.05)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
