"""up/down of a throwaway lab (index 1, 198.18.1.0/24) beside the shared one.

These tests break and rebuild their lab, so they never touch the shared lab
other sessions may be using.
"""

from __future__ import annotations

import fcntl
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from relayops.lab import lifecycle
from relayops.lab import state as lab_state
from relayops.lab.cli import lab as lab_cli
from relayops.lab.runner import Runner
from relayops.lab.topology import Topology
from support.lab import Lab, in_use_by_tests, users_path

pytestmark = pytest.mark.lab
INDEX = 1


def leftovers() -> dict[str, list[str]]:
    return lifecycle.leftovers(Runner(), Topology(index=INDEX, relay_count=1))


@pytest.fixture(scope="module")
def throwaway() -> Iterator[Lab]:
    result = lifecycle.up(relays=1, index=INDEX)
    try:
        yield Lab(result.topology)
    finally:
        lifecycle.down(index=INDEX)


def test_throwaway_lab_is_separate_and_healthy(throwaway: Lab) -> None:
    topo = throwaway.topology
    assert topo.relay(1).address == "198.18.1.11"
    assert lifecycle.healthy(lifecycle.probe(topo))
    status, out, _ = throwaway.run("relay1", "hostname -f; cat /etc/resolv.conf")
    assert status == 0
    assert "relay1.relay.example.net" in out and "nameserver 198.18.1.2" in out


def test_stock_postfix_on_a_relay_delivers_by_mx_to_the_sink(throwaway: Lab) -> None:
    """A real MTA on a relay finds yahoo.com's MX in the lab DNS and delivers to isp.lab."""
    tag = uuid.uuid4().hex
    script = (
        "postconf -e inet_protocols=ipv4 maillog_file=/var/log/mail.log && "
        "/etc/init.d/postfix start >/dev/null && "
        f"printf 'Subject: mx {tag}\\n\\nhi\\n' | sendmail -f probe@relay.example.net bob@yahoo.com"
    )
    status, _, err = throwaway.run("relay1", script)
    assert status == 0, err
    arrived = throwaway.sink.wait_for(lambda m: m.message["Subject"] == f"mx {tag}", timeout=30)
    assert arrived.recipient == "bob@yahoo.com"
    assert "relay1.relay.example.net" in str(arrived.message["Received"])
    # init scripts work as on a machine: restart, status, and no zombie left behind
    status, out, err = throwaway.run(
        "relay1", "/etc/init.d/postfix restart && /etc/init.d/postfix status; ps -e -o stat="
    )
    assert status == 0, err
    assert "postfix is running" in out
    assert "Z" not in out.split()


def test_up_clears_an_interrupted_lab(throwaway: Lab) -> None:
    """Running daemons, mounts and an extra namespace survive a crashed `up`; the next `up` wins."""
    topo = throwaway.topology
    stale_ns = f"{topo.netns_prefix}relay7"
    stale_mount = topo.state_dir / "relay7" / "root"
    subprocess.run(["ip", "netns", "add", stale_ns], check=True)
    stale_mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(stale_mount)], check=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", stale_ns, "sleep", "300"])
    lab_state.clear(INDEX)  # as if `up` died before recording the lab

    result = lifecycle.up(relays=1, index=INDEX)

    assert result.reused is False
    assert sleeper.wait(timeout=10) != 0  # stopped by the clean-up
    assert stale_ns not in leftovers()["namespaces"]
    assert str(stale_mount) not in leftovers()["mounts"]
    assert lifecycle.healthy(lifecycle.probe(topo))


def test_down_leaves_no_namespace_mount_link_or_process(throwaway: Lab) -> None:
    before = leftovers()
    assert before["namespaces"] and before["mounts"] and before["processes"]
    result = lifecycle.down(index=INDEX)
    assert sorted(result.namespaces) == sorted(before["namespaces"])
    assert leftovers() == {"namespaces": [], "links": [], "mounts": [], "processes": []}
    assert lab_state.load(INDEX) is None
    state_dir = throwaway.topology.state_dir
    assert [p.name for p in state_dir.iterdir()] == ["ssh"]  # only the lab key pair stays
    # a second down is harmless
    assert lifecycle.down(index=INDEX).namespaces == []
    status = CliRunner().invoke(lab_cli, ["status", "--index", str(INDEX)])
    assert status.exit_code == 1 and "lab is down" in status.output


def test_down_refuses_while_a_test_session_holds_the_lab() -> None:
    with users_path(INDEX).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        assert in_use_by_tests(INDEX)
        result = CliRunner().invoke(lab_cli, ["down", "--index", str(INDEX)])
        assert result.exit_code == 1
        assert "test session is using the lab" in result.output
    assert not in_use_by_tests(INDEX)
