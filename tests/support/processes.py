"""Ports, waiting and process control for the daemons the tests start on loopback.

Each daemon runs from its own temporary directory with its own configuration, on free
high ports, and is stopped by the fixture or context manager that started it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

LOOPBACK = "127.0.0.1"


def require(binary: str, package: str) -> str:
    """The binary's path; fails (never skips) when missing, naming the package."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/lib/postfix/sbin")
    if found is None:
        pytest.fail(f"{binary} is missing: install the Debian package {package} (make deps)")
    return found


def free_port(address: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


def free_udp_tcp_port(address: str = LOOPBACK) -> int:
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
    """Poll `ready` until true; on timeout raise with the tail of `log`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not come up within {timeout}s\n{detail}")


def wait_found(what: str, probe: Callable[[], Any], *, timeout: float, every: float) -> Any:
    """Call `probe` every `every` s until it returns something true, and return that;
    AssertionError naming `what` when nothing came within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)


def tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), 0.5):
            return True
    except OSError:
        return False


def wait_port(
    port: int,
    *,
    address: str = LOOPBACK,
    timeout: float = 20.0,
    proc: subprocess.Popen[bytes] | None = None,
    what: str = "service",
) -> None:
    """Wait until something listens on address:port; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if tcp_open(address, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {address}:{port} after {timeout}s")


def run(*args: str, log: Path | None = None) -> None:
    """Run a setup command; on failure raise with its output and the tail of `log`.

    Output goes to a file, not a pipe: daemons keep inherited pipes open after forking,
    and Postfix commands without a terminal write their errors only to their log.
    """
    with tempfile.TemporaryFile() as output:
        proc = subprocess.run(args, check=False, stdout=output, stderr=output, timeout=60)
        if proc.returncode != 0:
            output.seek(0)
            text = output.read().decode(errors="replace")
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {text}{tail}")


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal a child and wait for it; SIGKILL when it lingers."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def stop_pid(pid_file: Path, *, timeout: float = 15.0) -> None:
    """SIGTERM the daemon whose pid the file holds and wait until it is gone."""
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop_postfix(postfix: str, config_dir: Path, queue_dir: Path) -> None:
    """`postfix stop` returns before master has gone; wait for it, so the directory is
    not removed under a running master (which would leave files behind)."""
    pid_file = queue_dir / "pid" / "master.pid"
    pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
    subprocess.run(
        [postfix, "-c", str(config_dir), "stop"], capture_output=True, check=False, timeout=60
    )
    if pid is not None:
        try:
            wait_until(lambda: not Path(f"/proc/{pid}").exists(), "postfix stop", None, 20)
        except RuntimeError:
            subprocess.run(
                [postfix, "-c", str(config_dir), "abort"], capture_output=True, check=False
            )


def cleanup_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME")}


# main.cf settings every private test Postfix shares: its own users, no local delivery,
# no aliases (each instance adds its directories, names and listeners).
POSTFIX_PRIVATE_SETTINGS: dict[str, str] = {
    "compatibility_level": "3.6",
    "mail_owner": "postfix",
    "setgid_group": "postdrop",
    "mydomain": "relay.test",
    "myorigin": "relay.test",
    "mydestination": "",
    "local_recipient_maps": "",
    "alias_maps": "",
    "alias_database": "",
}

# Postfix's internal services (master.cf) every private test instance needs; each
# instance adds its own listeners before them.
POSTFIX_INTERNAL_SERVICES = """\
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""
