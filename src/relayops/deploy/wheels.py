"""Wheels of the policy daemon, built on the controller (relay hosts reach no index).

The project's wheel (`pip wheel --no-deps`) plus exactly the versions pinned in
`requirements/relay.txt` (`make lock`), each archive checked against its locked hash,
into a cache directory keyed by a digest of the sources and the lock: an unchanged
engine reuses byte-identical wheels and a redeploy uploads nothing. The relay installs
them with `--no-index`. The lock is resolved for every 3.11.x (`uv --universal`); its
markers are evaluated here for the host's own interpreter, not the controller's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from relayops.deploy.errors import DeployError

KEEP = 3  # builds kept in the cache
RELAY_LOCK = Path("requirements/relay.txt")  # relative to the project root
CACHE_ENV = "RELAYOPS_WHEEL_CACHE"
REPRODUCIBLE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry can hold


def wheel_cache(environ: Mapping[str, str] | None = None) -> Path:
    """Where built wheel sets are kept: $RELAYOPS_WHEEL_CACHE, else the user's cache.

    Not /var/cache: a CI runner or an operator's laptop deploys without root.
    """
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "relayops" / "wheels"


@dataclass(frozen=True)
class WheelSet:
    digest: str  # of the wheels' names and bytes: the host's install marker
    python: str  # "3.11.2": the hosts' interpreter the set was resolved for
    wheels: tuple[Path, ...]


def project_root() -> Path:
    """The source tree of the running relayops (an editable install or a checkout)."""
    import relayops

    root = Path(relayops.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise DeployError(
            f"relayops runs from {root}, not a source checkout: the deploy builds the policy "
            "daemon's wheels from the project; run it from a clone (pip install -e .)"
        )
    return root


def source_digest(root: Path) -> str:
    """Digest of pyproject.toml, the relay lock and every file under src/ (caches aside)."""
    digest = hashlib.sha256()
    files = [root / "pyproject.toml", root / RELAY_LOCK]
    files += sorted(
        p
        for p in (root / "src").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def wheel_set(directory: Path, python_full: str) -> WheelSet:
    wheels = tuple(sorted(directory.glob("*.whl")))
    digest = hashlib.sha256()
    for wheel in wheels:
        digest.update(wheel.name.encode() + b"\0" + wheel.read_bytes())
    return WheelSet(digest.hexdigest()[:16], python_full, wheels)


def _metadata(wheel: Path) -> tuple[str, list[str]]:
    """(project name, Requires-Dist lines) from a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(name).decode("utf-8"))
    return meta["Name"], meta.get_all("Requires-Dist") or []


def host_environment(python_full: str) -> dict[str, str]:
    """Marker environment of the host's interpreter ("3.11.2"), not the controller's."""
    env: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    env |= {
        "python_full_version": python_full,
        "python_version": ".".join(python_full.split(".")[:2]),
        "extra": "",
    }
    return env


def locked_for_host(lock_text: str, python_full: str) -> list[str]:
    """`name==version --hash=…` lines of a compiled lock whose marker holds on the host.

    The markers are dropped from the lines returned: pip would evaluate them for the
    controller's interpreter (async-timeout is only needed below 3.11.3).
    """
    env = host_environment(python_full)
    joined = lock_text.replace("\\\n", " ")
    lines: list[str] = []
    for raw in joined.splitlines():
        line = " ".join(raw.split("#", 1)[0].split())
        if not line or line.startswith("-"):
            continue
        spec, _, hashes = line.partition(" --hash=")
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        if len(req.specifier) != 1 or next(iter(req.specifier)).operator != "==":
            raise DeployError(f"{RELAY_LOCK}: {spec!r} is not pinned with ==: run `make lock`")
        if not hashes:
            raise DeployError(f"{RELAY_LOCK}: {spec!r} has no hash: run `make lock`")
        lines.append(f"{req.name}{req.specifier} --hash={hashes}")
    return lines


def missing_requirements(wheels: Iterable[Path], python_full: str) -> list[str]:
    """Requirements that apply on the host's Python but that no wheel of the set provides.

    pip resolves markers for the controller's interpreter only: a marker such as
    `python_full_version < "3.11.3"` (redis -> async-timeout) is false on the
    controller's 3.11.7 and true on Debian 12's 3.11.2. Extras are never requested.
    """
    env = host_environment(python_full)
    present: set[str] = set()
    required: dict[str, str] = {}
    for wheel in wheels:
        name, requires = _metadata(wheel)
        present.add(canonicalize_name(name))
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                required.setdefault(canonicalize_name(req.name), line.split(";")[0].strip())
    return sorted(spec for name, spec in required.items() if name not in present)


def pip_wheel_command(args: list[str], into: str) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of one `pip wheel` run; split out so the flags are tested.

    `--use-pep517`: Debian 12's pip (23.0, what a `debian:12` CI job's venv has) builds
    an sdist without pyproject.toml with `setup.py bdist_wheel`, which fails unless the
    `wheel` package is installed (dkimpy has no wheel on PyPI); PEP 517 builds in an
    isolated environment, as newer pips do by default.
    SOURCE_DATE_EPOCH: a wheel's zip entries otherwise carry the files' mtimes (a fresh
    clone's checkout time), so each CI job would build other bytes, and a drift check
    would report every host's wheels as changed; with it the build is byte-identical.
    """
    command = [
        sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
        "--use-pep517", "--wheel-dir", into, *args,
    ]  # fmt: skip
    return command, {**os.environ, "SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH}


def _pip_wheel(args: list[str], into: str, why: str) -> None:
    command, env = pip_wheel_command(args, into)
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise DeployError(
            f"pip wheel of {why} failed (exit {done.returncode}); the controller needs "
            f"the package index or a warm pip cache:\n{done.stderr[-2000:]}"
        )


def ensure_wheels(
    python_full: str, root: Path | None = None, cache: Path | None = None
) -> WheelSet:
    """The cached wheel set of this project for the hosts' Python (e.g. "3.11.2")."""
    root = root or project_root()
    cache = cache or wheel_cache()
    lock = root / RELAY_LOCK
    if not lock.is_file():
        raise DeployError(f"{lock} is missing: run `make lock` and commit requirements/")
    target = cache / f"{source_digest(root)}-py{python_full}"
    if target.is_dir() and any(target.glob("relayops-*.whl")):
        return wheel_set(target, python_full)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
        source = _copy_sources(root, Path(tmp) / "src-copy")
        wheels = Path(tmp) / "wheels"
        _pip_wheel(["--no-deps", str(source)], str(wheels), str(root))
        pinned = Path(tmp) / "pinned.txt"
        pinned.write_text("\n".join(locked_for_host(lock.read_text(), python_full)) + "\n")
        _pip_wheel(
            ["--no-deps", "--require-hashes", "-r", str(pinned)], str(wheels), str(RELAY_LOCK)
        )
        missing = missing_requirements(wheels.glob("*.whl"), python_full)
        if missing:
            raise DeployError(
                f"{RELAY_LOCK} lacks what the wheels need on Python {python_full}: "
                f"{', '.join(missing)}; run `make lock`"
            )
        shutil.rmtree(target, ignore_errors=True)
        wheels.rename(target)
    _prune(cache, keep=KEEP)
    return wheel_set(target, python_full)


def _copy_sources(root: Path, into: Path) -> Path:
    """Build from a copy: setuptools writes build/ and egg-info beside the sources it builds."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(root / "src", into / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "MANIFEST.in"):
        if (root / name).is_file():
            shutil.copy2(root / name, into / name)
    return into


def _prune(cache: Path, *, keep: int) -> None:
    builds = sorted(
        (p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)
