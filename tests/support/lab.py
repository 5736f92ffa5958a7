"""Handles on a running lab for the tests: bring it up once, talk to its hosts.

The fixtures that use these (`lab`, `deployed`) are in `support.lab_fixtures`.

A healthy running lab is reused. A lab a test session built is torn down by the
last session using it (sessions hold a shared lock while they run, see
`relayops.lab.users`), unless RELAYOPS_LAB_KEEP=1; a lab a person brought up with
`relayops lab up` is never torn down by tests.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from relayops.lab import lifecycle
from relayops.lab import state as lab_state
from relayops.lab.dns import LabDNS
from relayops.lab.host import host_command
from relayops.lab.image import image_key
from relayops.lab.sink import Sink
from relayops.lab.topology import Host, Topology
from relayops.lab.users import hold, in_use_by_tests, users_path

if TYPE_CHECKING:
    import paramiko

DEFAULT_RELAYS = 2
OWNER_MARK = "built-by-tests"
__all__ = ["Lab", "ensure_lab", "hold", "in_use_by_tests", "release", "users_path"]


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
        # A lab built from another tree's image (other packages) is rebuilt, not reused.
        and current.image_key == image_key()
        and lifecycle.healthy(lifecycle.probe(current.topology))
    ):
        return Lab(current.topology), False
    result = lifecycle.up(relays=relays, index=index)
    if not result.reused:
        (result.topology.state_dir / OWNER_MARK).write_text(str(os.getpid()))
    return Lab(result.topology), not result.reused


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
