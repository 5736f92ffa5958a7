"""Apply a change to a scratch view of the repository first, then to the repository.

A command that edits files computes them all (path -> new bytes, or None to
delete), validates the repository as it would be, and only then writes: an
invalid result leaves the repository untouched. The scratch view mirrors the
directories the loader reads with symbolic links, so staging costs one link per
file, not a copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

# What `load_repo` reads, plus secrets/ where a DKIM key is generated.
MIRRORED = ("customers", "policies", "inventory", "secrets")

Changes = Mapping[str, bytes | None]


@contextmanager
def staged(root: Path, changes: Changes) -> Iterator[Path]:
    """A scratch repository: `root`'s files, linked, with `changes` applied."""
    with tempfile.TemporaryDirectory(prefix="relayops-edit-") as scratch:
        stage = Path(scratch) / "repo"
        stage.mkdir()
        for part in MIRRORED:
            source = (root / part).resolve()
            if source.is_dir():
                shutil.copytree(source, stage / part, copy_function=os.symlink)
        for rel, content in changes.items():
            _put(stage / rel, content, mode=None)
        yield stage


def created_files(stage: Path, part: str) -> dict[str, bytes]:
    """Files written into `stage/part` since it was staged (the mirror holds only links)."""
    created: dict[str, bytes] = {}
    base = stage / part
    if not base.is_dir():
        return created
    for dirpath, _dirs, filenames in os.walk(base):
        for filename in filenames:
            path = Path(dirpath) / filename
            if not path.is_symlink():
                created[path.relative_to(stage).as_posix()] = path.read_bytes()
    return created


def apply(root: Path, changes: Changes) -> None:
    """Write each file atomically (temporary file, then rename), keeping its mode."""
    for rel, content in changes.items():
        target = root / rel
        mode = target.stat().st_mode & 0o777 if target.exists() else None
        _put(target, content, mode=mode)


def _put(path: Path, content: bytes | None, *, mode: int | None) -> None:
    if content is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644 if mode is None else mode)
        os.replace(tmp, path)  # replaces a staged link with the file, never writes through it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
