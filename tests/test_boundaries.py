"""The import-linter contracts of pyproject.toml hold (`make test` runs them too)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    tool = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [tool], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_the_daemon_contract_forbids_every_other_module() -> None:
    """A new top-level module of relayops is forbidden to the daemon too."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["source_modules"] == ["relayops.policyd"]
    )
    package = ROOT / "src" / "relayops"
    others = {
        f"relayops.{p.stem if p.is_file() else p.name}"
        for p in package.iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").is_file())
        and p.stem not in ("__init__", "__main__", "policyd")
    }
    assert others - set(contract["forbidden_modules"]) == set()


def test_the_relay_wheel_contract_forbids_every_module_the_wheel_lacks() -> None:
    """The feedback reader and relay.py run on relays: only policyd and the back-off
    services beside them (and the CLI options module those use)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["source_modules"] == ["relayops.feedback", "relayops.relay"]
    )
    package = ROOT / "src" / "relayops"
    others = {
        f"relayops.{p.stem if p.is_file() else p.name}"
        for p in package.iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").is_file())
        and p.stem not in ("__init__", "__main__", "policyd", "feedback", "relay", "backoff")
    }
    assert others - set(contract["forbidden_modules"]) == set()
    ignored = {line.split(" -> ")[0] for line in contract["ignore_imports"]}
    # the operator's group, not in the wheel; `relayops backoff` -> commands.options
    assert ignored == {"relayops.feedback.cli", "relayops.backoff.cli"}
