"""The daemon's batched log lines (policyd/logsink.py): late by at most FLUSH_DELAY, an
error at once, nothing lost on a clean stop, and the default time format."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Iterator

import pytest

from relayops.policyd import logsink


@pytest.fixture
def pipe() -> Iterator[tuple[logging.Logger, int]]:
    """A logger whose only handler is a BatchedHandler writing into a pipe (read end)."""
    read, write = os.pipe()
    os.set_blocking(read, False)
    handler = logsink.BatchedHandler(write)
    handler.setFormatter(logsink.CachedTimeFormatter(logsink.FORMAT))
    logger = logging.getLogger("relayops.test.logsink")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, read
    logger.removeHandler(handler)
    handler.close()
    os.close(read)
    os.close(write)


def written(fd: int) -> str:
    try:
        return os.read(fd, 1 << 16).decode()
    except BlockingIOError:
        return ""


def test_lines_wait_for_the_loop_an_error_does_not(pipe: tuple[logging.Logger, int]) -> None:
    logger, fd = pipe
    handler = logger.handlers[0]
    assert isinstance(handler, logsink.BatchedHandler)

    async def scenario() -> list[str]:
        handler.loop = asyncio.get_running_loop()
        seen = []
        logger.info("event=refused n=1")
        logger.info("event=refused n=2")
        seen.append(written(fd))  # buffered
        await asyncio.sleep(logsink.FLUSH_DELAY * 2)
        seen.append(written(fd))  # both, in one write
        logger.info("event=refused n=3")
        logger.error("event=store_outage")
        seen.append(written(fd))  # the error at once, and the line before it
        logger.info("event=stopping")
        handler.loop = None
        handler.flush()  # what logsink.attach(None) does when the loop stops
        seen.append(written(fd))
        return seen

    before, batch, urgent, last = asyncio.run(scenario())
    assert before == ""
    assert [line.split(" ", 4)[-1] for line in batch.splitlines()] == [
        "event=refused n=1",
        "event=refused n=2",
    ]
    assert "event=refused n=3" in urgent and "ERROR" in urgent.splitlines()[-1]
    assert last.endswith("INFO relayops.test.logsink event=stopping\n")


def test_without_a_loop_each_line_is_written_at_once(pipe: tuple[logging.Logger, int]) -> None:
    logger, fd = pipe
    logger.info("event=listening")
    assert written(fd).endswith("event=listening\n")


def test_time_text_is_the_default_formatters() -> None:
    ours, default = logsink.CachedTimeFormatter(logsink.FORMAT), logging.Formatter(logsink.FORMAT)
    for created in (1_764_600_000.0, 1_764_600_000.999, 1_764_600_001.5, 1_764_600_000.25):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == default.format(record)


def test_the_direct_line_is_the_line_logging_writes(pipe: tuple[logging.Logger, int]) -> None:
    logger, fd = pipe
    logger.info('event=refused reason=quota reply="452 4.7.1 x"')
    logsink.info(logger, 'event=refused reason=quota reply="452 4.7.1 x"')
    via_logging, direct = written(fd).splitlines()
    date = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    assert re.fullmatch(date + r"INFO relayops\.test\.logsink event=refused .*", direct)
    assert direct.split(" ", 2)[2] == via_logging.split(" ", 2)[2]


def test_the_direct_line_goes_through_logging_when_anything_else_listens(
    pipe: tuple[logging.Logger, int], caplog: pytest.LogCaptureFixture
) -> None:
    logger, fd = pipe
    logger.addFilter(lambda record: True)
    with caplog.at_level(logging.INFO, logger=logger.name):
        logsink.info(logger, "event=refused n=1")
    assert [r.getMessage() for r in caplog.records] == ["event=refused n=1"]
    assert written(fd).endswith("event=refused n=1\n")  # and the handler still wrote it
    logger.setLevel(logging.WARNING)
    logsink.info(logger, "event=refused n=2")
    assert written(fd) == ""
