"""The daemon's log lines, written in batches.

Every refused recipient logs one line. Under a burst of 452s those lines took a
quarter of the daemon's CPU (py-spy, bench/policyd/RESULTS.md "logs"): a non-interactive
stderr is line-buffered, so each line was its own write(2) to the journal's pipe, and
each formatted its time anew. Here lines go into a 64 KiB buffer that the event loop
writes out `FLUSH_DELAY` after the first line waiting; an ERROR or worse (a store
outage, a handler bug) is written at once with every line before it, as is everything
before the loop runs and after it stops, and at exit (logging.shutdown flushes). A
SIGKILL loses at most the last `FLUSH_DELAY` of lines.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time

FLUSH_DELAY = 0.05
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class CachedTimeFormatter(logging.Formatter):
    """The default ``asctime`` text (``2026-12-01 15:04:05,123``), formatted once a second."""

    _second = -1
    _text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._text},{int(record.msecs):03d}"


class BatchedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to file descriptor `fd` through a buffer the attached event loop flushes."""

    def __init__(self, fd: int) -> None:
        raw = io.FileIO(fd, "w", closefd=False)
        stream = io.TextIOWrapper(
            io.BufferedWriter(raw, 1 << 16), encoding="utf-8", errors="backslashreplace"
        )
        super().__init__(stream)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._due = False

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            self.stream.write(self.format(record) + self.terminator)
            loop = self.loop
            if loop is None or record.levelno >= logging.ERROR:
                self.stream.flush()
            elif not self._due:
                self._due = True
                try:
                    on_loop = asyncio.get_running_loop() is loop
                except RuntimeError:  # another thread (the notifier, the SQLite writer)
                    on_loop = False
                if on_loop:
                    loop.call_later(FLUSH_DELAY, self.flush)
                else:
                    loop.call_soon_threadsafe(loop.call_later, FLUSH_DELAY, self.flush)
        except Exception:  # logging's contract: a failing handler never raises
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._due = False
            self.stream.flush()


def configure(level: str, fd: int = 2) -> None:
    """The daemon's logging: batched lines on `fd` (stderr: the journal under systemd)."""
    handler = BatchedHandler(fd)
    handler.setFormatter(CachedTimeFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def attach(loop: asyncio.AbstractEventLoop | None) -> None:
    """Let `loop` batch the lines (None: write each line at once again, after flushing)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, BatchedHandler):
            handler.flush()
            handler.loop = loop
