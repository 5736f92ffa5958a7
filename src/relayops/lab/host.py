"""One lab host: overlay root, chroot mounts, identity files, sshd, and running commands in it.

A host's processes live in its network namespace and run chrooted in its
overlay root, under their own UTS namespace carrying the host's name (a chroot
alone would show the machine's hostname).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from pathlib import Path

from relayops.lab.errors import LabTimeoutError
from relayops.lab.image import Image
from relayops.lab.keys import KeyPair, new_ed25519, write_private
from relayops.lab.netns import netns_path
from relayops.lab.runner import Runner
from relayops.lab.topology import Host, Topology

_DAEMON_ENV = ("env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root")


def host_command(topo: Topology, host: Host, argv: Sequence[str]) -> list[str]:
    """argv that runs `argv` inside `host`: its netns, a UTS namespace with its name, its root.

    nsenter (not `ip netns exec`) keeps the machine's mount namespace, so the
    host's mounts made later stay visible to what runs in it.
    """
    script = 'hostname "$1" && shift && exec chroot "$@"'
    return [
        "nsenter", f"--net={netns_path(topo.netns(host))}",
        "unshare", "--uts",
        "sh", "-c", script, "sh", host.fqdn, str(topo.root(host)),
        *_DAEMON_ENV, *argv,
    ]  # fmt: skip


def hosts_file(host: Host) -> str:
    short = host.fqdn.split(".", 1)[0]
    lines = ["127.0.0.1\tlocalhost", f"{host.address}\t{host.fqdn} {short}"]
    lines += ["::1\tlocalhost ip6-localhost ip6-loopback", ""]
    return "\n".join(lines)


def mount_root(runner: Runner, topo: Topology, host: Host, image: Image) -> None:
    """Overlay root over the image, then proc, sys (of the host's netns), dev, dev/pts, run."""
    base = topo.host_dir(host)
    upper, work, root = base / "upper", base / "work", topo.root(host)
    for path in (upper, work, root):
        path.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={image.rootfs},upperdir={upper},workdir={work}"
    runner.run(["mount", "-t", "overlay", "overlay", "-o", options, str(root)])
    runner.run(["mount", "-t", "proc", "proc", str(root / "proc")])
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
