"""Fixtures for the policy daemon tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.policyd import Daemon, RedisServer
from support.smtp_sink import SmtpSink


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[Daemon]]:
    """Collects daemons a test starts and stops the ones still running."""
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc is not None:
            with contextlib.suppress(Exception):
                d.stop(signal.SIGKILL)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not (shutil.which("redis-server") or os.path.exists("/usr/bin/redis-server")):
        pytest.fail("redis-server is missing: run `make deps` (Debian package redis-server)")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()
