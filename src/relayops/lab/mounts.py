"""Mounts: read /proc/self/mountinfo, unmount a tree deepest first, delete safely.

Deleting a directory with a live bind mount of /dev beneath it would delete the
machine's /dev, so every removal here first unmounts and then refuses to cross
file systems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from relayops.lab.errors import LabError
from relayops.lab.runner import Runner

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fstype: str
    source: str
    super_options: str


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse proc(5) mountinfo: `id parent dev root mountpoint opts [tags] - fstype src super`."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        left, _, right = line.partition(" - ")
        fields = left.split()
        tail = right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                fstype=tail[0],
                source=_unescape(tail[1]),
                super_options=tail[2],
            )
        )
    return mounts


def read_mounts() -> list[Mount]:
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def is_under(path: str, top: Path) -> bool:
    top_s = str(top).rstrip("/")
    return path == top_s or path.startswith(top_s + "/")


def mounts_under(top: Path, mounts: list[Mount] | None = None) -> list[str]:
    """Mount points at or below `top`, deepest first (the order to unmount them)."""
    found = {m.mount_point for m in (read_mounts() if mounts is None else mounts)}
    under = [p for p in found if is_under(p, top)]
    return sorted(under, key=lambda p: (p.count("/"), p), reverse=True)


def unmount_tree(runner: Runner, top: Path) -> list[str]:
    """Unmount everything at or below `top`, deepest first; return what was unmounted."""
    done: list[str] = []
    # A mount point may carry several stacked mounts: repeat until none is left.
    for _ in range(5):
        points = mounts_under(top)
        if not points:
            return done
        for point in points:
            if runner.run(["umount", point], check=False).returncode != 0:
                # Busy (a process still holds it): detach now, the kernel frees it later.
                runner.run(["umount", "--lazy", point], check=False)
            done.append(point)
    left = mounts_under(top)
    if left:
        raise LabError(f"could not unmount {left}; find the processes with `fuser -m {left[0]}`")
    return done


def remove_tree(runner: Runner, path: Path) -> None:
    """Delete `path` after making sure nothing is mounted beneath it."""
    if not path.exists():
        return
    unmount_tree(runner, path)
    runner.run(["rm", "-rf", "--one-file-system", str(path)])
