"""One lab host: overlay root, chroot mounts, identity files, an init, sshd, commands in it.

A host is a network namespace, a PID namespace and a UTS namespace (carrying
the host's name; a chroot alone would show the machine's hostname) around a
chroot into its overlay root. A small init is PID 1 of the PID namespace: it
keeps the namespaces alive and reaps orphans, so `ps`, pidof and pid files in a
host see only that host's processes, as on a real machine.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from relayops.lab.errors import LabError, LabNotUpError, LabTimeoutError
from relayops.lab.image import Image
from relayops.lab.keys import KeyPair, new_ed25519, write_private
from relayops.lab.netns import netns_path
from relayops.lab.processes import pids_in_netns
from relayops.lab.runner import Runner
from relayops.lab.topology import Host, Topology

_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
_DAEMON_ENV = ("env", "-i", _PATH, "LANG=C.UTF-8", "HOME=/root")

# PID 1 of a host: reaps orphaned daemons (a zombie would make a pid file look alive) and
# exits on SIGTERM, which ends every process of the host. Named relayops-init for `ps`.
_REAPER = """\
import ctypes, os, signal, time
ctypes.CDLL(None).prctl(15, b"relayops-init", 0, 0, 0)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""
# Runs as PID 1 of the new PID namespace, in the machine's mount namespace: the proc it
# mounts shows only the host's processes and is unmounted by `lab down` like the others.
_INIT = (
    'hostname "$1" && mount -t proc proc "$2/proc" && '
    f'exec chroot "$2" /usr/bin/env -i {_PATH} /usr/bin/python3 -c "$3"'
)


def init_pid_file(topo: Topology, host: Host) -> Path:
    return topo.host_dir(host) / "init.pid"


def host_command(topo: Topology, host: Host, argv: Sequence[str]) -> list[str]:
    """argv that runs `argv` inside `host`: its net, UTS and PID namespaces and its root.

    nsenter joins the namespaces of the host's init (keeping the machine's mount
    namespace, so mounts stay visible to `lab down`) and takes its root directory.
    """
    try:
        pid = init_pid_file(topo, host).read_text().strip()
    except FileNotFoundError as exc:
        raise LabNotUpError(f"host {host.name}") from exc
    return ["nsenter", "-t", pid, "-n", "-u", "-p", "-r", "-w", *_DAEMON_ENV, *argv]


def _ns_init_pid(pid: int) -> bool:
    """True when `pid` is PID 1 of a child PID namespace (`NSpid: <outer> 1`)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            fields = line.split()[1:]
            return len(fields) == 2 and fields[1] == "1"
    return False


def find_init(runner: Runner, topo: Topology, host: Host) -> int | None:
    """The root-namespace pid of the host's init once it has entered the host's root."""
    root = str(topo.root(host))
    for pid in sorted(pids_in_netns(runner, topo.netns(host))):
        try:
            in_root = os.readlink(f"/proc/{pid}/root") == root
        except OSError:
            continue
        if in_root and _ns_init_pid(pid):
            return pid
    return None


def start_init(runner: Runner, topo: Topology, host: Host, *, timeout: float = 10.0) -> int:
    """Start the host's init (detached) and record its pid in `<host dir>/init.pid`."""
    log = topo.host_dir(host) / "init.log"
    argv = [
        "nsenter", f"--net={netns_path(topo.netns(host))}",
        "unshare", "--uts", "--pid", "--fork",
        "sh", "-c", _INIT, "sh", host.fqdn, str(topo.root(host)), _REAPER,
    ]  # fmt: skip
    # setsid -f detaches it; its output goes to a file so the runner does not wait on pipes.
    runner.run(["sh", "-c", f'exec setsid -f "$@" </dev/null >>"{log}" 2>&1', "sh", *argv])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = find_init(runner, topo, host)
        if pid is not None:
            init_pid_file(topo, host).write_text(f"{pid}\n")
            return pid
        time.sleep(0.02)
    detail = log.read_text() if log.exists() else ""
    raise LabError(f"the init of lab host {host.name} did not start within {timeout} s: {detail}")


def hosts_file(host: Host) -> str:
    short = host.fqdn.split(".", 1)[0]
    lines = ["127.0.0.1\tlocalhost", f"{host.address}\t{host.fqdn} {short}"]
    lines += ["::1\tlocalhost ip6-localhost ip6-loopback", ""]
    return "\n".join(lines)


def mount_root(runner: Runner, topo: Topology, host: Host, image: Image) -> None:
    """Overlay root over the image, then sys (of the host's netns), dev, dev/pts, run.

    proc is mounted by the host's init, from inside its PID namespace.
    """
    base = topo.host_dir(host)
    upper, work, root = base / "upper", base / "work", topo.root(host)
    for path in (upper, work, root):
        path.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={image.rootfs},upperdir={upper},workdir={work}"
    runner.run(["mount", "-t", "overlay", "overlay", "-o", options, str(root)])
    # sysfs mounted from inside the namespace shows the host's own interfaces.
    ns = netns_path(topo.netns(host))
    runner.run(["nsenter", f"--net={ns}", "mount", "-t", "sysfs", "sysfs", str(root / "sys")])
    runner.run(["mount", "--bind", "/dev", str(root / "dev")])
    runner.run(["mount", "--bind", "/dev/pts", str(root / "dev/pts")])
    runner.run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", str(root / "run")])


def write_identity(topo: Topology, host: Host, *, authorized_key: str) -> KeyPair:
    """Hostname, /etc/hosts, resolv.conf, mailname, root's authorized key, a fresh host key."""
    root = topo.root(host)
    (root / "etc/hostname").write_text(host.fqdn + "\n")
    (root / "etc/mailname").write_text(host.fqdn + "\n")
    (root / "etc/hosts").write_text(hosts_file(host))
    (root / "etc/resolv.conf").write_text(f"nameserver {topo.dns.address}\noptions timeout:2\n")
    ssh = root / "root/.ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    authorized = ssh / "authorized_keys"
    authorized.write_text(authorized_key + "\n")
    authorized.chmod(0o600)
    pair = new_ed25519(f"root@{host.fqdn}")
    write_private(root / "etc/ssh/ssh_host_ed25519_key", pair)
    (root / "run/sshd").mkdir(mode=0o755, exist_ok=True)
    return pair


def start_sshd(runner: Runner, topo: Topology, host: Host) -> None:
    runner.run(host_command(topo, host, ["/usr/sbin/sshd"]))


def wait_tcp(address: str, port: int, *, timeout: float = 15.0) -> None:
    """Return when `address:port` accepts a TCP connection; raise `LabTimeoutError` otherwise."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise LabTimeoutError(
        f"{address}:{port} did not accept connections within {timeout} s ({last})"
    )


def tcp_answers(address: str, port: int, *, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def shell(topo: Topology, host: Host, script: str) -> list[str]:
    """argv that runs a shell `script` inside `host`."""
    return host_command(topo, host, ["/bin/sh", "-c", script])


def path_in(topo: Topology, host: Host, inside: str) -> Path:
    """The root-namespace path of a path inside `host` (through its overlay mount)."""
    return topo.root(host) / inside.lstrip("/")
