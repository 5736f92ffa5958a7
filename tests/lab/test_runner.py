"""The lab's command runner: failures name the command and carry its stderr."""

from __future__ import annotations

import pytest

from relayops.lab.errors import CommandError
from relayops.lab.keys import known_hosts_line, new_ed25519
from relayops.lab.runner import Runner


def test_failure_names_the_command_and_its_stderr() -> None:
    with pytest.raises(CommandError) as info:
        Runner().run(["sh", "-c", "echo out; echo boom >&2; exit 3"])
    assert info.value.returncode == 3
    assert "exit 3" in str(info.value) and "boom" in str(info.value)
    assert "sh -c" in str(info.value)


def test_missing_program_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="not found"):
        Runner().run(["/nonexistent/relayops-tool"])


def test_unchecked_run_and_env() -> None:
    runner = Runner()
    assert runner.run(["sh", "-c", "exit 4"], check=False).returncode == 4
    assert runner.run(["sh", "-c", "echo $LAB_X"], env={"LAB_X": "y"}).stdout == "y\n"
    assert not runner.ok(["false"])


def test_known_hosts_line_lists_every_name() -> None:
    pair = new_ed25519("root@relay1")
    line = known_hosts_line(["relay1.example", "198.18.0.11"], pair.public_line)
    assert line.startswith("relay1.example,198.18.0.11 ssh-ed25519 AAAA")
    assert "root@relay1" not in line
    assert pair.private_openssh.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
