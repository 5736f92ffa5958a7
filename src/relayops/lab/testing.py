"""Test helpers others import: bring the lab up once per test session, talk to its hosts.

In a conftest.py::

    from relayops.lab.testing import lab  # noqa: F401  (the session fixture)

    @pytest.mark.lab
    def test_something(lab: Lab) -> None:
        rc, out, _ = lab.run("relay1", "postconf -h myhostname")

A healthy running lab is reused. A lab a test session built is torn down by the
last session using it (sessions hold a shared lock while they run), unless
RELAYOPS_LAB_KEEP=1; a lab a person brought up with `relayops lab up` is never
torn down by tests.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from relayops.lab import lifecycle
from relayops.lab import state as lab_state
from relayops.lab.dns import LabDNS
from relayops.lab.host import host_command
from relayops.lab.sink import Sink
from relayops.lab.topology import Host, Topology

if TYPE_CHECKING:
    import paramiko

DEFAULT_RELAYS = 2
OWNER_MARK = "built-by-tests"


@dataclass(frozen=True)
class Lab:
    """Handles on a running lab: its topology, DNS, sink and SSH access."""

    topology: Topology

    @property
    def dns(self) -> LabDNS:
        return LabDNS(self.topology)

    @property
    def sink(self) -> Sink:
        return Sink(self.topology)

    @property
    def ssh_key(self) -> Path:
        return self.topology.ssh_key

    @property
    def known_hosts(self) -> Path:
        return self.topology.known_hosts

    def host(self, name: str) -> Host:
        return self.topology.host(name)

    def ssh(self, name: str) -> paramiko.SSHClient:
        """A connected paramiko client, root with the lab key, host key checked."""
        import paramiko

        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            self.host(name).address,
            username="root",
            key_filename=str(self.ssh_key),
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
        )
        return client

    def run(self, name: str, command: str, *, timeout: float = 60) -> tuple[int, str, str]:
        """Run a shell command on a host over SSH: (exit status, stdout, stderr)."""
        client = self.ssh(name)
        try:
            _, stdout, stderr = client.exec_command(command, timeout=timeout)
            status = stdout.channel.recv_exit_status()
            return status, stdout.read().decode(), stderr.read().decode()
        finally:
            client.close()

    def exec(self, name: str, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run argv inside a host without SSH (its namespace, hostname and root)."""
        cmd = host_command(self.topology, self.host(name), argv)
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


def ensure_lab(*, relays: int = DEFAULT_RELAYS, index: int = 0) -> tuple[Lab, bool]:
    """A running lab with at least `relays` relays; True when this call built it."""
    current = lab_state.load(index)
    if (
        current
        and current.relays >= relays
        and lifecycle.healthy(lifecycle.probe(current.topology))
    ):
        return Lab(current.topology), False
    result = lifecycle.up(relays=relays, index=index)
    if not result.reused:
        (result.topology.state_dir / OWNER_MARK).write_text(str(os.getpid()))
    return Lab(result.topology), not result.reused


def users_path(index: int) -> Path:
    """Test sessions using lab `index` hold a shared flock on this file."""
    return Path(f"/run/relayops-lab{index}.users")


def _users_lock(index: int) -> IO[str]:
    handle = users_path(index).open("w")  # held (locked) for the whole session
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def in_use_by_tests(index: int = 0) -> bool:
    """True while a test session holds the lab (see the `lab` fixture)."""
    path = users_path(index)
    if not path.exists():
        return False
    with path.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def release(lab: Lab, handle: IO[str]) -> None:
    """Drop this session's use of the lab; the last user tears down a test-built lab."""
    fcntl.flock(handle, fcntl.LOCK_UN)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return  # another session still uses the lab
    try:
        built_by_tests = (lab.topology.state_dir / OWNER_MARK).exists()
        if built_by_tests and os.environ.get("RELAYOPS_LAB_KEEP") != "1":
            lifecycle.down(index=lab.topology.index)
    finally:
        handle.close()


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The shared lab (index 0), up for the whole test session."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    handle = _users_lock(0)
    running, _ = ensure_lab()
    try:
        yield running
    finally:
        release(running, handle)
