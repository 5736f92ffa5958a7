"""Read the host once and decide everything: what changes, what to index, what to reload."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from dataclasses import dataclass

from pyinfra.context import host

from relayops.checkout import SERVICE_FILES
from relayops.compile.files import Daemon, Directory
from relayops.deploy import target as targets
from relayops.deploy.counters import read_passwords, redis_files, redis_placement
from relayops.deploy.errors import DeployError
from relayops.deploy.facts import HostFacts, HostSnapshot, Snapshot
from relayops.deploy.hostplan import (
    BACKOFF_SERVICES,
    INIT_SCRIPT,
    SENTINEL_INIT_SCRIPT,
    SENTINEL_SERVICE,
    SENTINEL_SYSTEMD_UNIT,
    SYSTEMD_UNIT,
    HostPlan,
    host_plan,
    init_script,
    systemd_unit,
    wanted_packages,
)
from relayops.deploy.removal_steps import manifest_command
from relayops.deploy.sentinel import (
    SENTINEL_CONF,
    SENTINEL_PATHS,
    sentinel_files,
    sentinel_node,
    sentinel_placement,
)
from relayops.deploy.sentinel_settings import SentinelSettings, wanted_settings
from relayops.deploy.state import Change, PathState, Wanted, directory_changes, file_changes
from relayops.deploy.wheels import WheelSet, ensure_wheels
from relayops.hostlayout import MARKER
from relayops.labca import LabCA


@dataclass
class HostRun:
    """One host's deploy, decided before any operation runs."""

    inventory_name: str
    target: targets.Target
    plan: HostPlan
    facts: HostFacts
    states: dict[str, PathState]
    running: dict[str, bool]
    wheels: WheelSet
    changes: list[Change]
    directories: list[Directory]
    installed: frozenset[str]  # of wanted_packages(): the Debian packages dpkg has
    manifest: list[str]  # the manifest as read (relayops.deploy.removal_steps.record)
    # The host's sentinel's wanted settings (relayops.deploy.sentinel_settings), if it runs one.
    sentinel_settings: SentinelSettings | None = None

    @property
    def changed(self) -> set[str]:
        return {c.wanted.path for c in self.changes if c.content}


def _service_files(systemd: bool, *, sentinel: bool) -> list[Wanted]:
    services = [("relayops-policyd", INIT_SCRIPT, SYSTEMD_UNIT)]
    services += [
        (name, init_script(name), systemd_unit(name))
        for name in (*BACKOFF_SERVICES, Daemon.MAILLOG.value)
    ]
    if sentinel:
        services.append((SENTINEL_SERVICE, SENTINEL_INIT_SCRIPT, SENTINEL_SYSTEMD_UNIT))
    files = []
    for name, init, unit in services:
        files.append(Wanted(init, (SERVICE_FILES / f"{name}.init").read_bytes(), 0o755, "root",
                            "root"))  # fmt: skip
        if systemd:
            content = (SERVICE_FILES / f"{name}.service").read_bytes()
            files.append(Wanted(unit, content, 0o644, "root", "root"))
    return files


@functools.cache
def _wheels_for(python: str) -> WheelSet:
    """One wheel set per deploy run, even if the sources change while hosts are prepared."""
    return ensure_wheels(python)


def _wheels(facts: HostFacts) -> WheelSet:
    # No python3 yet (a bare production host): the packages step installs Debian's; resolve
    # for the controller's version meanwhile (same minor version required anyway).
    return _wheels_for(facts.python or ".".join(map(str, sys.version_info[:3])))


def host_run() -> HostRun:
    """Decide this host's deploy from the target `relayops deploy` compiled (or, under a
    plain `pyinfra` run, from the repository compiled once in this process)."""
    target = targets.deploy_target(targets.environ(), set(host.groups))
    root, inventory_name = target.root, target.inventory.name
    config = target.configs.get(host.name)
    if config is None:
        raise DeployError(
            f"{host.name} is not a host of {root}/inventory/{inventory_name}.py as the "
            f"repository reads it (hosts: {', '.join(sorted(target.configs))}); "
            "set RELAYOPS_REPO to the repository this inventory belongs to"
        )
    relay = next(h for h in target.inventory.hosts if h.name == host.name)
    identity = targets.identity_path(root, target.inventory, targets.environ())
    secrets = {s.source: targets.decrypted(root, s.source, identity) for s in config.secrets}
    certificate = ca = None
    if relay.tls == "lab-ca":
        names = [relay.fqdn, *(ip.ptr for ip in relay.ips)]
        addresses = [str(ip.address) for ip in relay.ips]
        now = dt.datetime.now(dt.UTC)
        certificate = LabCA().host(relay.fqdn, names, addresses, now)
        ca = LabCA().ca(now).cert
    placement = redis_placement(target.inventory)
    group = sentinel_placement(target.inventory)
    member = group.member(host.name) if group is not None else None
    redis = None
    sentinel: list[Wanted] = []
    settings = None
    if placement is not None and placement.host.name == host.name:
        passwords = read_passwords(lambda source: targets.decrypted(root, source, identity))
        redis = redis_files(placement, passwords, certificate=certificate, ca=ca)
    elif group is not None and member is not None:
        passwords = read_passwords(lambda source: targets.decrypted(root, source, identity))
        files = sentinel_files(group, member, passwords, certificate=certificate, ca=ca)
        redis = [w for w in files if w.path not in SENTINEL_PATHS]
        sentinel = [w for w in files if w.path in SENTINEL_PATHS]
        settings = wanted_settings(sentinel_node(group, member), passwords, SENTINEL_CONF)

    def plan_for(systemd: bool) -> HostPlan:
        return host_plan(
            config,
            secrets=secrets,
            certificate=certificate,
            service_files=_service_files(systemd, sentinel=bool(sentinel)),
            redis_files=redis,
            ca=ca,
            sentinel_files=sentinel,
        )

    # One read of the host before anything is decided: the paths of both service-file
    # sets (systemd or not is one of the things read), the packages the plan needs.
    both = plan_for(systemd=True)
    paths = sorted({*both.state_paths(), *(w.path for w in _service_files(False, sentinel=True))})
    snapshot: Snapshot = host.get_fact(
        HostSnapshot,
        marker_path=MARKER,
        paths=paths,
        services=both.services,
        packages=wanted_packages(both.services),
        manifest=manifest_command(),
    )
    facts = snapshot.facts
    plan = both if facts.systemd else plan_for(systemd=False)
    return HostRun(
        inventory_name=inventory_name,
        target=target,
        plan=plan,
        facts=facts,
        states=snapshot.states,
        running=snapshot.running,
        wheels=_wheels(facts),
        changes=file_changes(plan.wanted, snapshot.states),
        directories=directory_changes(plan.directories, snapshot.states),
        installed=snapshot.installed,
        manifest=snapshot.manifest,
        sentinel_settings=settings,
    )
