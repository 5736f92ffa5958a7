"""Run the pyinfra deploy of a repository: validate, then `pyinfra -y INVENTORY relay.py`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from relayops.checkout import CHECKOUT, DEPLOY_FILE
from relayops.deploy.errors import DeployError
from relayops.deploy.known_hosts import known_hosts_file, require_pinned
from relayops.deploy.target import (
    REPO_ENV,
    TARGET_ENV,
    Target,
    load_target,
    repo_of_inventory,
    save_target,
)

ENGINE_ROOT = CHECKOUT  # the checkout `relayops deploy` runs pyinfra in


@dataclass(frozen=True)
class DeployResult:
    returncode: int
    seconds: float
    output: str  # empty when streamed to the terminal
    target: Target  # the repository as this run compiled (or was given) it


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


def host_keys(inventory_file: Path, target: Target) -> tuple[Path | None, bool]:
    """(known_hosts file, strict) for pyinfra.

    An inventory with a pinned `<inventory>.known_hosts` beside it (production) is
    checked for a real key per host before anything starts, then connected to with
    strict checking (DeployError when a key is missing or still a placeholder). An
    inventory without one names its own file in its data, strictly (the lab: the
    keys `lab up` recorded).
    """
    pinned = known_hosts_file(inventory_file)
    if not pinned.is_file():
        return None, False
    require_pinned(pinned, [h.ssh_hostname for h in target.inventory.hosts])
    return pinned.resolve(), True


def validate(inventory_file: Path, repo: Path | None = None) -> Target:
    """The repository the inventory belongs to, validated and compiled (DeployError if not).

    With `repo` (`--repo`), the inventory must be one of that repository's."""
    root = repo_of_inventory(inventory_file)
    if repo is not None and root != repo.resolve():
        raise DeployError(
            f"{inventory_file} is not an inventory of {repo.resolve()}; "
            "give --repo the repository it belongs to, or --inventory NAME"
        )
    return load_target(root, inventory_file.stem)


def run_deploy(
    inventory_file: Path,
    *,
    dry: bool = False,
    limit: Sequence[str] = (),
    capture: bool = False,
    env: dict[str, str] | None = None,
    repo: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    target: Target | None = None,
) -> DeployResult:
    """Validate, then run pyinfra with RELAYOPS_REPO set to the inventory's repository.

    `target`: the inventory as the caller already compiled it with `validate` (a canary
    deploy's stages share one); None compiles it here. Either way the result carries it,
    so a caller needs no second compile for the host names. `on_line` receives each line
    of pyinfra's output as it comes (progress), which implies capturing it."""
    if not DEPLOY_FILE.is_file():
        raise DeployError(f"{DEPLOY_FILE} is missing: run from a relayops checkout")
    if target is None:
        target = validate(inventory_file, repo)
    known_hosts, strict = host_keys(inventory_file, target)
    started = time.monotonic()
    argv = pyinfra_argv(
        inventory_file.resolve(), dry=dry, limit=limit, known_hosts=known_hosts, strict=strict
    )
    # Compiled once, here: the pyinfra process reads this target instead of compiling again.
    with tempfile.TemporaryDirectory(prefix="relayops-deploy-") as scratch:
        environment = {
            **os.environ,
            **(env or {}),
            REPO_ENV: str(target.root),
            TARGET_ENV: str(save_target(target, Path(scratch))),
        }
        if on_line is not None:
            code, output = _streamed(argv, environment, on_line)
            return DeployResult(code, round(time.monotonic() - started, 2), output, target)
        done = subprocess.run(
            argv,
            cwd=ENGINE_ROOT,
            env=environment,
            capture_output=capture,
            text=True,
            check=False,
        )
    output = (done.stdout or "") + (done.stderr or "") if capture else ""
    return DeployResult(done.returncode, round(time.monotonic() - started, 2), output, target)


def _streamed(
    argv: list[str], environment: dict[str, str], on_line: Callable[[str], None]
) -> tuple[int, str]:
    """Run pyinfra, handing each output line to `on_line` as it comes; (exit code, output)."""
    lines: list[str] = []
    with subprocess.Popen(
        argv,
        cwd=ENGINE_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            on_line(line.rstrip("\n"))
    return process.returncode, "".join(lines)
