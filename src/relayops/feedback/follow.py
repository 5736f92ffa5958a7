"""Following the relay's Postfix logs for good: new files, rotation, positions, garbage.

`relayops feedback maillog --follow` runs as a service on every relay (deploy:
`relayops-maillog`) over every instance's `maillog_file` (`/var/log/postfix*.log`).
This module is its I/O, kept apart from the parser (maillog.py, pure) and from the
decision (consequences.py, pure), and testable without sleeping: `LogFollower.poll`
reads what is there now and returns.

- **New files**: the patterns are expanded again at each poll, so an output instance
  added by a deploy is followed from its first line.
- **Rotation**: a path whose inode changed (logrotate's rename + create) is read to its
  end under the old inode, then from the start of the new file; a file that shrank or
  whose first bytes changed (copytruncate, then new lines) is read again from its start.
- **Positions**: the offset of the last line handled, per path and inode, is written
  atomically to a state file after each poll, so a restart neither skips nor re-reads
  (re-reading would be harmless: each refusal has its at-most-once key). A file the
  state does not know, or whose inode changed while the follower was stopped, is read
  from its start. On start, up to `WARM_BYTES` before the saved offset are fed to the
  queue-ID tracker only, so a refusal logged after a restart still finds the sender
  its `qmgr` line named before it.
- **Garbage** (`maillog.is_garbage`: no log line, or a `status=bounced` line the parser
  cannot read): appended to the review file, logged, never acted on.

The state file and the review file are runtime state under /var/lib/relayops/maillog:
no deploy writes them and `relayops drift` does not compare them.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from relayops.feedback.maillog import Tracker

log = logging.getLogger("relayops.feedback.follow")

WARM_BYTES = 16 * 1024 * 1024  # read again on start, for the tracker only
MAX_LINE = 64 * 1024  # a longer "line" is cut there (and is garbage)
HEAD_BYTES = 128  # what tells a truncated and rewritten file from the one read
MAX_LINES_PER_POLL = 10_000  # a long backlog is read in bounded batches
MAX_REVIEW_BYTES = 10 * 1024 * 1024  # the review file is rotated once past this (one .1 kept)


def expand(patterns: Iterable[str]) -> list[Path]:
    """The existing files the patterns name (a pattern without wildcards names itself)."""
    found: set[str] = set()
    for pattern in patterns:
        if glob.has_magic(pattern):
            found.update(p for p in glob.glob(pattern) if os.path.isfile(p))
        elif os.path.isfile(pattern):
            found.add(pattern)
    return [Path(p) for p in sorted(found)]


@dataclass(frozen=True)
class Position:
    inode: int
    offset: int
    head: str = ""  # hex of the file's first bytes (an inode number can be reused)


def load_positions(path: Path) -> dict[str, Position]:
    """The state file; an unreadable or malformed one is logged and read as empty."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            str(name): Position(
                int(value["inode"]), int(value["offset"]), str(value.get("head", ""))
            )
            for name, value in data.items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("event=maillog_state_unreadable path=%s error=%r", path, str(exc))
        return {}


def save_positions(path: Path, positions: dict[str, Position]) -> None:
    data = {
        name: {"inode": p.inode, "offset": p.offset, "head": p.head}
        for name, p in sorted(positions.items())
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class _Open:
    """One followed path: its handle, inode, offset and queue-ID tracker."""

    path: Path
    handle: IO[bytes]
    inode: int
    offset: int
    tracker: Tracker = field(default_factory=Tracker)
    head: bytes = b""  # the file's first bytes when last read: another start is another file

    def start(self) -> bytes:
        return os.pread(self.handle.fileno(), HEAD_BYTES, 0)

    def replaced(self, size: int) -> bool:
        """Truncated (copytruncate), or rewritten past the offset: its first bytes changed."""
        if size < self.offset:
            return True
        return bool(self.head) and self.start()[: len(self.head)] != self.head

    def read(self, *, limit: int | None = MAX_LINES_PER_POLL) -> list[tuple[str, int]]:
        """Complete lines from the offset on (at most `limit`), each with the offset after it."""
        self.handle.seek(self.offset)
        out: list[tuple[str, int]] = []
        while limit is None or len(out) < limit:
            line = self.handle.readline(MAX_LINE)
            if not line:
                return out
            if not line.endswith(b"\n") and len(line) < MAX_LINE:
                return out  # Postfix is writing it: read it whole next time
            self.offset += len(line)
            out.append((line.decode("utf-8", "surrogateescape"), self.offset))
        return out


def _open(path: Path) -> tuple[IO[bytes], int] | str:
    """The open file and its inode, or why it cannot be read."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        return exc.strerror or str(exc)
    return handle, os.fstat(handle.fileno()).st_ino


class LogFollower:
    """The lines appended to the files the patterns name, poll after poll."""

    def __init__(self, patterns: Iterable[str], positions: dict[str, Position]) -> None:
        self.patterns = tuple(patterns)
        self.positions = dict(positions)
        self.files: dict[str, _Open] = {}
        self.unreadable: set[str] = set()  # logged once until it can be read

    def poll(self) -> list[tuple[_Open, str]]:
        """Every complete line now readable, with the file it came from; positions move
        as the lines are returned (`commit` saves them once they were handled)."""
        lines: list[tuple[_Open, str]] = []
        for path in expand(self.patterns):
            name = str(path)
            current = self.files.get(name)
            try:
                stat = path.stat()
            except OSError:
                continue
            tracker = None
            if current is not None and current.inode != stat.st_ino:
                rest = current.read(limit=None)  # the rotated file, to its end
                lines += [(current, text) for text, _ in rest]
                current.handle.close()
                log.info("event=maillog_rotated path=%s", name)
                del self.files[name]
                self.positions.pop(name, None)
                tracker, current = current.tracker, None  # a queue file may span the rotation
            if current is None:
                current = self._start(path, tracker)
                if current is None:
                    continue
            if current.replaced(stat.st_size):
                log.info("event=maillog_truncated path=%s", name)
                current.offset, current.head = 0, b""
            lines += [(current, text) for text, _ in current.read()]
            if len(current.head) < HEAD_BYTES:
                current.head = current.start()[: min(current.offset, HEAD_BYTES)]
            self.positions[name] = Position(current.inode, current.offset, current.head.hex())
        return lines

    def _start(self, path: Path, tracker: Tracker | None = None) -> _Open | None:
        name = str(path)
        opened = _open(path)
        if isinstance(opened, str):
            if name not in self.unreadable:
                log.warning("event=maillog_unreadable path=%s error=%r", name, opened)
                self.unreadable.add(name)
            return None
        self.unreadable.discard(name)
        handle, inode = opened
        known = self.positions.get(name)
        size = os.fstat(handle.fileno()).st_size
        current = _Open(path, handle, inode, 0, tracker or Tracker())
        same = (
            known is not None
            and known.inode == inode
            and known.offset <= size
            and current.start().hex().startswith(known.head)
        )
        offset = known.offset if known is not None and same else 0
        current.head = bytes.fromhex(known.head) if known is not None and same else b""
        if offset:
            start = current.offset = max(0, offset - WARM_BYTES)
            warm = current.read(limit=None)
            for text, end in warm[1:] if start else warm:  # the first began before the window
                if end > offset:
                    break
                current.tracker.feed(text)
            current.offset = offset
        self.files[name] = current
        log.info("event=maillog_following path=%s inode=%d offset=%d", name, inode, offset)
        return current

    def close(self) -> None:
        for current in self.files.values():
            current.handle.close()
        self.files.clear()


class ReviewFile:
    """Lines nobody could read, kept for a person to look at (bounded: one .1 kept)."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_REVIEW_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.kept = 0

    def keep(self, source: str, line: str, why: str) -> None:
        self.kept += 1
        log.warning("event=maillog_garbage path=%s why=%s kept=%s", source, why, self.path)
        text = line.rstrip("\r\n").encode("utf-8", "surrogateescape")[:MAX_LINE]
        record = json.dumps({"file": source, "why": why, "line": text.decode("latin-1")})
        try:
            if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            with self.path.open("a", encoding="utf-8") as out:
                out.write(record + "\n")
        except OSError as exc:  # a full disk must not stop the reading of refusals
            log.error("event=maillog_review_unwritable path=%s error=%r", self.path, str(exc))


def describe(current: _Open) -> dict[str, Any]:
    return {"path": str(current.path), "inode": current.inode, "offset": current.offset}
