"""Start real Debian daemons (NSD, Postfix, Dovecot) on loopback for the real-server tests.

Each runs from its own temporary directory with its own configuration, on free
high ports, and is stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def require(binary: str, package: str) -> str:
    """The binary's path; fails (never skips) when missing, naming the package."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/lib/postfix/sbin")
    if found is None:
        pytest.fail(f"{binary} is missing: install the Debian package {package} (make deps)")
    return found


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


def free_udp_tcp_port(address: str) -> int:
    """A port free for both UDP and TCP (a DNS server listens on both)."""
    for _ in range(50):
        port = free_port(address)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free UDP+TCP port on {address}")


def world_readable_tmpdir(prefix: str) -> Path:
    """A temp dir daemons' unprivileged users can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def wait_until(ready: Callable[[], bool], what: str, log: Path | None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not come up within {timeout}s\n{detail}")


def tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), 0.5):
            return True
    except OSError:
        return False


def run(cmd: list[str], *, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a setup command; on failure show its output and the tail of `log` (Postfix
    commands without a terminal write their errors only to their log)."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr}{result.stdout}{tail}"
        )
    return result


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def cleanup_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}
