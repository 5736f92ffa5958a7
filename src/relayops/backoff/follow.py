"""Follow several log files at once, as `tail -F` does: new lines, across rotation.

Hand-written (forty lines) because the kept libraries that tail files (pygtail, tailer)
follow one file, keep offsets in files of their own or miss a rotation between reads.
A file that does not exist yet (an instance that never logged) is read from its start
once it appears; a file replaced or truncated is read again from its start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass
class _Open:
    handle: BinaryIO
    inode: int
    pending: bytes = b""


class Follower:
    def __init__(self, paths: Iterable[Path], *, from_end: bool) -> None:
        self._open: dict[Path, _Open] = {}
        self._paths: list[Path] = []
        self.set_paths(paths, from_end=from_end)

    def set_paths(self, paths: Iterable[Path], *, from_end: bool = True) -> None:
        """Follow these (a reload); files already followed keep their place."""
        wanted = list(dict.fromkeys(paths))
        for path in [p for p in self._open if p not in wanted]:
            self._open.pop(path).handle.close()
        for path in wanted:
            if path not in self._open:
                self._try_open(path, from_end=from_end)
        self._paths = wanted

    @property
    def paths(self) -> list[Path]:
        return list(self._paths)

    def _try_open(self, path: Path, *, from_end: bool) -> None:
        try:
            handle = path.open("rb")
        except OSError:
            return
        if from_end:
            handle.seek(0, os.SEEK_END)
        self._open[path] = _Open(handle, os.fstat(handle.fileno()).st_ino)

    def poll(self) -> Iterator[str]:
        """The complete lines appended since the last poll, file by file."""
        for path in self._paths:
            current = self._open.get(path)
            try:
                stat = path.stat()
            except OSError:
                stat = None
            if current is not None and stat is not None:
                position = current.handle.tell()
                if stat.st_ino != current.inode or stat.st_size < position:
                    yield from self._drain(current)  # the old file's last lines
                    current.handle.close()
                    del self._open[path]
                    current = None
            if current is None:
                if stat is None:
                    continue
                self._try_open(path, from_end=False)  # new since: read it whole
                current = self._open.get(path)
                if current is None:
                    continue
            yield from self._drain(current)

    @staticmethod
    def _drain(state: _Open) -> Iterator[str]:
        data = state.pending + state.handle.read()
        *lines, state.pending = data.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "surrogateescape")

    def close(self) -> None:
        for state in self._open.values():
            state.handle.close()
        self._open.clear()
