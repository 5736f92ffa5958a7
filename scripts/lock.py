#!/usr/bin/env python3
"""Hash-pinned lock files of every Python dependency, and the check that they are current.

    python3 scripts/lock.py compile   # `make lock`: (re)write requirements/*.txt with uv
    python3 scripts/lock.py check     # `make test`: exit 1 when a lock is stale

Two files, both resolved by `uv pip compile --universal --generate-hashes` for the relay
hosts' Python (Debian 12: 3.11) so their environment markers hold for any 3.11.x:
- requirements/lock.txt: runtime + dev + deploy extras (install-deps, `make demo`, CI);
- requirements/relay.txt: runtime only, constrained to lock.txt's versions (the wheels
  `relayops deploy` ships to the relays, src/relayops/deploy/wheels.py).

Each file's first line records a digest of pyproject.toml's dependency lists. `check`
recomputes it offline (no resolver, no network) and also verifies that every declared
requirement is satisfied by a pinned version, so a hand-edited lock fails too.
Re-running `compile` keeps the existing pins (uv prefers the versions already in the
output file) and resolves only what changed.

Standard library only (tomllib), plus `packaging` for the requirement check: it runs
from the project venv, before or without the project being importable.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Debian 12's interpreter: the relays run it, and so do CI's containers.
TARGET_PYTHON = "3.11"
LOCK = "requirements/lock.txt"
RELAY = "requirements/relay.txt"
EXTRAS = ("dev", "deploy")
HEADER = "# relayops-lock pyproject-deps-sha256="
_HEADER_RE = re.compile(r"^# relayops-lock pyproject-deps-sha256=([0-9a-f]{64})$", re.M)
_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)


def dependency_lists(pyproject: dict[str, Any]) -> dict[str, Any]:
    """What a lock is resolved from: Python bound, runtime deps, the extras we lock."""
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    return {
        "requires-python": project.get("requires-python", ""),
        "target-python": TARGET_PYTHON,
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {name: sorted(extras.get(name, [])) for name in EXTRAS},
    }


def digest(pyproject_text: str) -> str:
    data = dependency_lists(tomllib.loads(pyproject_text))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock_text: str) -> str | None:
    match = _HEADER_RE.search(lock_text)
    return match.group(1) if match else None


def pins(lock_text: str) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line of a compiled file."""
    return {canonicalize_name(m.group(1)): m.group(2) for m in _PIN_RE.finditer(lock_text)}


def unsatisfied(requirements: Sequence[str], locked: dict[str, str]) -> list[str]:
    """Declared requirements that no pin satisfies (missing, or outside the bounds)."""
    bad = []
    for line in requirements:
        req = Requirement(line)
        version = locked.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            bad.append(f"{line} (locked: {version or 'absent'})")
    return bad


def problems(root: Path) -> list[str]:
    """Why the lock files are stale against pyproject.toml; empty when they are current."""
    pyproject_text = (root / "pyproject.toml").read_text()
    wanted = digest(pyproject_text)
    lists = dependency_lists(tomllib.loads(pyproject_text))
    extras = lists["optional-dependencies"]
    every = [*lists["dependencies"], *(r for e in EXTRAS for r in extras[e])]
    found: list[str] = []
    for name, requirements in ((LOCK, every), (RELAY, lists["dependencies"])):
        path = root / name
        if not path.is_file():
            found.append(f"{name} is missing")
            continue
        text = path.read_text()
        if recorded_digest(text) != wanted:
            found.append(f"{name}: pyproject.toml's dependency lists changed since it was compiled")
        found += [f"{name}: {item}" for item in unsatisfied(requirements, pins(text))]
    return found


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        sys.exit("lock: uv is not installed (it is a dev dependency: ./scripts/install-deps)")
    return found


def uv_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """uv's environment: it trusts the system's CA store, as Debian's pip does.

    uv otherwise checks TLS against its own bundled roots only, so behind a proxy whose
    CA `update-ca-certificates` installed, `make deps` (pip) works and `make lock` fails
    with "invalid peer certificate: UnknownIssuer". An explicit UV_SYSTEM_CERTS wins.
    """
    return {"UV_SYSTEM_CERTS": "1", **environ}


def _compile(root: Path, output: str, *args: str) -> None:
    command = [
        _uv(), "pip", "compile", "pyproject.toml", "--quiet", "--universal",
        "--python-version", TARGET_PYTHON, "--generate-hashes",
        "--custom-compile-command", "make lock", "--output-file", output, *args,
    ]  # fmt: skip
    subprocess.run(command, cwd=root, check=True, env=uv_environment(os.environ))
    path = root / output
    body = path.read_text()
    body = _HEADER_RE.sub("", body).lstrip("\n")
    path.write_text(f"{HEADER}{digest((root / 'pyproject.toml').read_text())}\n{body}")


def compile_locks(root: Path) -> None:
    (root / "requirements").mkdir(exist_ok=True)
    _compile(root, LOCK, *(arg for extra in EXTRAS for arg in ("--extra", extra)))
    # The relays get exactly lock.txt's versions of the runtime dependencies.
    _compile(root, RELAY, "--constraints", LOCK)


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["compile"]:
        compile_locks(ROOT)
        return 0
    if list(argv) == ["check"]:
        found = problems(ROOT)
        for problem in found:
            print(f"lock: {problem}", file=sys.stderr)
        if found:
            print("lock: stale; run `make lock` and commit requirements/", file=sys.stderr)
        return 1 if found else 0
    print("usage: scripts/lock.py compile|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
