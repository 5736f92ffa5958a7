"""The daemon's log lines, written in batches.

Every refused recipient logs one line. Under a burst of 452s those lines took a
quarter of the daemon's CPU (py-spy, bench/policyd/RESULTS.md "credit"): a non-interactive
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
        return self.asctime(record.created, record.msecs)

    def asctime(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._text},{int(msecs):03d}"


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
            self._written(record.levelno)
        except Exception:  # logging's contract: a failing handler never raises
            self.handleError(record)

    def write_info(self, name: str, message: str) -> bool:
        """Write what an INFO record of logger `name` would, without building the record;
        False when this handler's formatting is not the daemon's own (use logging)."""
        formatter = self.formatter
        if not isinstance(formatter, CachedTimeFormatter) or formatter._fmt != FORMAT:
            return False
        now = time.time()
        line = f"{formatter.asctime(now, (now - int(now)) * 1000)} INFO {name} {message}\n"
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(line)
            self._written(logging.INFO)
        return True

    def _written(self, level: int) -> None:
        """Flush now (an ERROR, or no loop yet) or see that the loop flushes soon."""
        loop = self.loop
        if loop is None or level >= logging.ERROR:
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


def info(logger: logging.Logger, message: str) -> None:
    """``logger.info(message)`` for a line written once per request (a refusal): straight
    into the batched buffer when that is all logging would do with it — the daemon's own
    set-up, `configure()`: one BatchedHandler on the root, no filters, no other handler on
    the way — else through logging. Building a LogRecord and passing it through the
    handler chain was most of a refusal line's cost (bench/policyd/RESULTS.md, "credit")."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_handler(logger)
    if handler is None or not handler.write_info(logger.name, message):
        logger.info(message)


def _sole_handler(logger: logging.Logger) -> BatchedHandler | None:
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters or node.disabled:
            return None
        if node.handlers:
            only = node.handlers[0]
            ok = len(node.handlers) == 1 and isinstance(only, BatchedHandler)
            if not ok or only.filters or only.level > logging.INFO:
                return None
            return only  # type: ignore[return-value]
        if not node.propagate:
            return None
        node = node.parent
    return None
