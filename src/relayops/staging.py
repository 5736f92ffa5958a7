"""Write a change only once the repository it makes is valid.

A command that edits files computes them all (path -> new bytes, or None to
delete), has the loader validate the repository as it would be (`load_repo(...,
overlay=changes)`: nothing on disk yet), and only then writes each file
atomically. Files made by other code (a DKIM key pair) are made in a scratch
directory first and join the change.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

Changes = Mapping[str, bytes | None]


@contextmanager
def scratch(root: Path, inputs: Sequence[str]) -> Iterator[Path]:
    """A temporary repository root holding copies of `inputs` (paths relative to `root`)."""
    with tempfile.TemporaryDirectory(prefix="relayops-edit-") as folder:
        base = Path(folder)
        for rel in inputs:
            source = root / rel
            if source.is_file():
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, base / rel)
        yield base


def created_files(base: Path, inputs: Sequence[str]) -> dict[str, bytes]:
    """Files in the scratch root `base` other than the `inputs` it was made with."""
    created: dict[str, bytes] = {}
    for dirpath, _dirs, filenames in os.walk(base):
        for filename in filenames:
            rel = (Path(dirpath) / filename).relative_to(base).as_posix()
            if rel not in inputs:
                created[rel] = (base / rel).read_bytes()
    return created


def apply(root: Path, changes: Changes) -> None:
    """Write each file atomically (temporary file, then rename), keeping its mode."""
    for rel, content in changes.items():
        target = root / rel
        if content is None:
            target.unlink(missing_ok=True)
            continue
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
