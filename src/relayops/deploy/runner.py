"""Run the pyinfra deploy of a repository: validate, then `pyinfra -y INVENTORY relay.py`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from relayops.deploy.errors import DeployError
from relayops.deploy.known_hosts import known_hosts_file, require_pinned
from relayops.deploy.target import REPO_ENV, Target, load_target, repo_of_inventory
from relayops.lab.topology import Topology

ENGINE_ROOT = Path(__file__).resolve().parents[3]
DEPLOY_FILE = ENGINE_ROOT / "deploys" / "relay.py"


@dataclass(frozen=True)
class DeployResult:
    returncode: int
    seconds: float
    output: str  # empty when streamed to the terminal


def pyinfra_argv(
    inventory_file: Path,
    *,
    dry: bool,
    limit: Sequence[str] = (),
    known_hosts: Path | None = None,
    strict: bool = False,
) -> list[str]:
    """`--dry --diff` shows what would change; otherwise `-y` skips pyinfra's own change pass.

    `strict`: a host whose key is not in `known_hosts` is refused, not added.
    """
    pyinfra = Path(sys.executable).with_name("pyinfra")
    argv = [str(pyinfra) if pyinfra.exists() else "pyinfra"]
    argv += ["--dry", "--diff"] if dry else ["-y"]
    for host in limit:
        argv += ["--limit", host]
    if known_hosts is not None:
        argv += ["--data", f"ssh_known_hosts_file={known_hosts}"]
        if strict:
            argv += ["--data", "ssh_strict_host_key_checking=yes"]
    return [*argv, str(inventory_file), str(DEPLOY_FILE)]


def _lab_topology(target: Target) -> Topology | None:
    """The lab whose network holds every host of the inventory, if one does."""
    try:
        addresses = [ip_address(h.ssh_hostname) for h in target.inventory.hosts]
    except ValueError:  # a host named by DNS name: not a lab host
        return None
    for index in (0, 1):
        topo = Topology(index=index, relay_count=1)
        if all(a in topo.network for a in addresses):
            return topo
    return None


def lab_known_hosts(target: Target) -> Path | None:
    """The lab's known_hosts when every host of the inventory is in one lab's network.

    `lab up` records each host's key there: pyinfra then verifies the lab's host keys
    (a changed key fails the connection) instead of trusting whatever answers.
    """
    topo = _lab_topology(target)
    return topo.known_hosts if topo is not None and topo.known_hosts.is_file() else None


def host_keys(inventory_file: Path, target: Target) -> tuple[Path | None, bool]:
    """(known_hosts file, strict) for pyinfra.

    Lab hosts: the file `lab up` wrote, strictly (the lab inventory no longer turns
    checking off: a lab host whose key changed is refused like any other). Any other
    inventory: its pinned
    `<inventory>.known_hosts`, checked for a real key per host before anything starts,
    and strict checking (DeployError when a key is missing or still a placeholder).
    """
    if _lab_topology(target) is not None:
        known = lab_known_hosts(target)
        return known, known is not None
    pinned = known_hosts_file(inventory_file)
    require_pinned(pinned, [h.ssh_hostname for h in target.inventory.hosts])
    return pinned.resolve(), True


def validate(inventory_file: Path) -> Target:
    """The repository the inventory belongs to, validated and compiled (DeployError if not)."""
    root = repo_of_inventory(inventory_file)
    return load_target(root, inventory_file.stem)


def run_deploy(
    inventory_file: Path,
    *,
    dry: bool = False,
    limit: Sequence[str] = (),
    capture: bool = False,
    env: dict[str, str] | None = None,
) -> DeployResult:
    """Validate, then run pyinfra with RELAYOPS_REPO set to the inventory's repository."""
    if not DEPLOY_FILE.is_file():
        raise DeployError(f"{DEPLOY_FILE} is missing: run from a relayops checkout")
    target = validate(inventory_file)
    environment = {**os.environ, **(env or {}), REPO_ENV: str(target.root)}
    known_hosts, strict = host_keys(inventory_file, target)
    started = time.monotonic()
    argv = pyinfra_argv(
        inventory_file.resolve(), dry=dry, limit=limit, known_hosts=known_hosts, strict=strict
    )
    done = subprocess.run(
        argv,
        cwd=ENGINE_ROOT,
        env=environment,
        capture_output=capture,
        text=True,
        check=False,
    )
    output = (done.stdout or "") + (done.stderr or "") if capture else ""
    return DeployResult(done.returncode, round(time.monotonic() - started, 2), output)
