"""`lab up`, `lab down`, `lab status`: build, tear down and probe one lab instance."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from relayops.lab import netns, processes
from relayops.lab import state as lab_state
from relayops.lab.dns import LabDNS
from relayops.lab.errors import LabError, NotRootError
from relayops.lab.host import (
    mount_root,
    start_init,
    start_sshd,
    tcp_answers,
    wait_tcp,
    write_identity,
)
from relayops.lab.image import ensure_image, image_key
from relayops.lab.keys import ensure_client_key, known_hosts_line
from relayops.lab.mounts import mounts_under, remove_tree, unmount_tree
from relayops.lab.runner import Runner
from relayops.lab.sink import Sink
from relayops.lab.topology import CACHE_DIR, Host, Topology

log = logging.getLogger("relayops.lab")


# Programs `lab up` runs on the machine, and the Debian package that ships each.
TOOLS = {
    "ip": "iproute2",
    "mount": "mount",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "setsid": "util-linux",
    "chroot": "coreutils",
    "tar": "tar",
    "zstd": "zstd",
    "debootstrap": "debootstrap",
}


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError()


def require_tools() -> None:
    missing = sorted(name for name in TOOLS if shutil.which(name) is None)
    if missing:
        packages = " ".join(sorted({TOOLS[name] for name in missing}))
        raise LabError(f"missing programs {missing}: apt-get install {packages}")


@contextmanager
def locked(topo: Topology) -> Iterator[None]:
    """One `up`/`down` at a time per lab instance (several test sessions may share a lab)."""
    with topo.lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Timings:
    phases: dict[str, float] = field(default_factory=dict)
    _mark: float = field(default_factory=time.monotonic)

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self._mark, 3)
        self._mark = now

    @property
    def total(self) -> float:
        return round(sum(self.phases.values()), 3)


@dataclass(frozen=True)
class UpResult:
    topology: Topology
    reused: bool
    timings: dict[str, float]
    total: float


@dataclass(frozen=True)
class DownResult:
    namespaces: list[str]
    unmounted: list[str]
    total: float


# ---- probes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostStatus:
    host: Host
    netns: str
    services: dict[str, bool]


def expected_services(host: Host) -> tuple[str, ...]:
    """Services `lab up` starts (relays get Postfix from the deploy, so it is only reported)."""
    return {"relay": ("sshd",), "dns": ("sshd", "nsd"), "sink": ("sshd", "postfix")}[host.role]


def probe(topo: Topology) -> list[HostStatus]:
    dns = LabDNS(topo)
    found: list[HostStatus] = []
    for host in topo.hosts:
        services = {"sshd": tcp_answers(host.address, 22, timeout=0.5)}
        if host.role == "dns":
            services["nsd"] = dns.soa_serial("lab", timeout=0.5) is not None
        else:
            services["postfix"] = tcp_answers(host.address, 25, timeout=0.5)
        found.append(HostStatus(host=host, netns=topo.netns(host), services=services))
    return found


def healthy(statuses: list[HostStatus]) -> bool:
    return all(s.services.get(name, False) for s in statuses for name in expected_services(s.host))


# ---- down ---------------------------------------------------------------------------------


def teardown(runner: Runner, topo: Topology) -> DownResult:
    """Remove whatever this lab instance left: processes, mounts, namespaces, links, files.

    Works without the state file, so it also clears a lab an interrupted `up` left behind.
    """
    started = time.monotonic()
    namespaces = netns.lab_namespaces(runner, topo)
    pids: set[int] = processes.pids_rooted_under(topo.state_dir)
    for ns in namespaces:
        pids |= processes.pids_in_netns(runner, ns)
    processes.stop(pids)
    unmounted = unmount_tree(runner, topo.state_dir)
    netns.delete_network(runner, topo)
    if topo.state_dir.exists():
        for entry in topo.state_dir.iterdir():
            if entry.name == "ssh":
                continue  # keep the lab key pair: stable across ups, like a real operator key
            if entry.is_dir():
                remove_tree(runner, entry)
            else:
                entry.unlink()
    topo.known_hosts.unlink(missing_ok=True)
    return DownResult(namespaces, unmounted, round(time.monotonic() - started, 3))


def down(*, index: int = 0, runner: Runner | None = None) -> DownResult:
    require_root()
    topo = Topology(index=index, relay_count=1)
    with locked(topo):
        return teardown(runner or Runner(), topo)


def leftovers(runner: Runner, topo: Topology) -> dict[str, list[str]]:
    """What of this lab instance exists on the machine (empty lists after a clean `down`)."""
    return {
        "namespaces": netns.lab_namespaces(runner, topo),
        "links": netns.lab_links(runner, topo),
        "mounts": mounts_under(topo.state_dir),
        "processes": [str(p) for p in sorted(processes.pids_rooted_under(topo.state_dir))],
    }


# ---- up -----------------------------------------------------------------------------------


def _build(
    runner: Runner, topo: Topology, t: Timings, cache_dir: Path, say: Callable[[str], None]
) -> None:
    say("image")
    image = ensure_image(runner, cache_dir=cache_dir, on_phase=say)
    t.lap("image")
    say("network")
    topo.state_dir.mkdir(parents=True, exist_ok=True)
    client_key = ensure_client_key(topo.ssh_key)
    netns.create_bridge(runner, topo)
    for host in topo.hosts:
        netns.create_host_network(runner, topo, host)
    t.lap("network")
    say("host roots")
    host_keys: dict[str, str] = {}
    for host in topo.hosts:
        mount_root(runner, topo, host, image)
        host_keys[host.name] = write_identity(topo, host, authorized_key=client_key).public_line
    t.lap("roots")
    say("services")
    dns = LabDNS(topo, runner)
    dns.write_initial()
    sink = Sink(topo, runner)
    sink.configure()
    for host in topo.hosts:
        start_init(runner, topo, host)
        start_sshd(runner, topo, host)
    dns.start()
    sink.start()
    for host in topo.hosts:
        wait_tcp(host.address, 22)
    wait_tcp(topo.sink.address, 25)
    t.lap("services")
    lines = [known_hosts_line([h.fqdn, *h.addresses], host_keys[h.name]) for h in topo.hosts]
    topo.known_hosts.write_text("\n".join(lines) + "\n")
    lab_state.save(
        lab_state.LabState(
            index=topo.index, relays=topo.relay_count, image_key=image.key, started_at=time.time()
        )
    )


def up(
    *,
    relays: int = 2,
    index: int = 0,
    runner: Runner | None = None,
    cache_dir: Path = CACHE_DIR,
    on_phase: Callable[[str], None] | None = None,
) -> UpResult:
    """Bring the lab up; a healthy lab of the same shape and image is left as it is.

    `on_phase(name)` is called as each phase starts (the CLI's progress on a terminal).

    `cache_dir` holds the image; the benchmark points it elsewhere to time a build from scratch
    without pulling the image from under a running lab.
    """
    require_root()
    require_tools()
    run = runner or Runner()
    topo = Topology(index=index, relay_count=relays)
    t = Timings()
    with locked(topo):
        current = lab_state.load(index)
        same_shape = current and current.relays == relays and current.image_key == image_key()
        if same_shape and healthy(probe(topo)):
            # A lab built by an older relayops gets the sink's current receiver tables.
            Sink(topo, run).refresh()
            t.lap("probe")
            return UpResult(topo, True, t.phases, t.total)
        teardown(run, topo)
        t.lap("clear")
        try:
            _build(run, topo, t, cache_dir, on_phase or (lambda _phase: None))
        except BaseException:
            log.error("lab up failed; clearing what it built (rerun with -v to see commands)")
            teardown(run, topo)
            raise
    return UpResult(topo, False, t.phases, t.total)


def stray(*, index: int = 0) -> dict[str, list[str]]:
    """Leftovers of lab `index` on this machine (see `leftovers`)."""
    return leftovers(Runner(), Topology(index=index, relay_count=1))


def status(*, index: int = 0) -> tuple[lab_state.LabState | None, list[HostStatus]]:
    current = lab_state.load(index)
    if current is None:
        return None, []
    return current, probe(current.topology)
