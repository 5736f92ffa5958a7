"""Wheels of the policy daemon, built on the controller (relay hosts reach no index).

The relays get `relayops-policyd`: a distribution staged from `src/relayops/policyd/`,
the feedback reader and ingester `src/relayops/feedback/` without its operator commands
(cli.py), the back-off services `src/relayops/backoff/`, the CLI convention's
`commands/options.py`, the relay's entry point `src/relayops/relay.py` and the package's
`__init__.py`, with the daemon's own dependencies only, taken with their bounds from
pyproject.toml. import-linter keeps policyd from importing anything else of relayops,
and the feedback package and relay.py from importing anything but themselves and
policyd, so that tree is all they need. Its dependencies are exactly the
versions `requirements/relay.txt` pins (`make lock`), each archive checked against its
locked hash; the set goes into a cache directory keyed by a digest of the staged tree
and the lock: an edit anywhere outside the daemon (lab/, compile/, a typo in a doc
string) leaves the digest, the wheels and so the relays' daemons as they are; an edit
of the daemon or of a pin restarts it. The lock is resolved for every 3.11.x
(`uv --universal`); its markers are evaluated for the host's interpreter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from relayops.checkout import CHECKOUT, is_checkout
from relayops.deploy.errors import DeployError

KEEP = 3  # builds kept in the cache
RELAY_LOCK = Path("requirements/relay.txt")  # relative to the project root
CACHE_ENV = "RELAYOPS_WHEEL_CACHE"
DAEMON_DIST = "relayops-policyd"
DAEMON_VERSION = "0.1.0"
# What of relayops the relay wheel carries (import-linter: these import nothing else).
RELAY_PACKAGES = ("policyd", "feedback", "backoff")
# The CLI convention's options module too: `relayops backoff` uses it as every command does.
RELAY_MODULES = ("relay.py", "commands/__init__.py", "commands/options.py")
OPERATOR_ONLY = frozenset({"feedback/cli.py"})  # the operator's `relayops feedback` group
# The distributions relayops.policyd imports (import-linter: nothing else of relayops).
DAEMON_REQUIRES = ("click", "kilter.protocol", "pydantic", "prometheus-client", "redis")
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
    root = CHECKOUT
    if not is_checkout(root):
        raise DeployError(
            f"relayops runs from {root}, not a source checkout: the deploy builds the policy "
            "daemon's wheels from the project; run it from a clone (pip install -e .)"
        )
    return root


def daemon_requirements(root: Path) -> list[str]:
    """The daemon's dependencies as pyproject.toml bounds them (one declaration)."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {canonicalize_name(n) for n in DAEMON_REQUIRES}
    found = [d for d in project["dependencies"] if canonicalize_name(Requirement(d).name) in wanted]
    if len(found) != len(wanted):
        raise DeployError(f"pyproject.toml must list the daemon's dependencies {DAEMON_REQUIRES}")
    return sorted(found)


def daemon_pyproject(root: Path) -> str:
    requires = "".join(f"    {r!r},\n".replace("'", '"') for r in daemon_requirements(root))
    return (
        '[build-system]\nrequires = ["setuptools>=68", "wheel"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{DAEMON_DIST}"\nversion = "{DAEMON_VERSION}"\n'
        'description = "The relayops policy daemon, as installed on relay hosts"\n'
        f'requires-python = ">=3.11"\ndependencies = [\n{requires}]\n\n'
        '[project.scripts]\nrelayops = "relayops.relay:main"\n\n'
        '[tool.setuptools]\npackages = ["relayops", "relayops.policyd", "relayops.feedback", '
        '"relayops.backoff", "relayops.commands"]\n'
        'package-dir = {"" = "src"}\n'
    )


def daemon_files(root: Path) -> dict[str, bytes]:
    """The staged daemon tree: relative path -> bytes (caches and bytecode aside)."""
    package = root / "src" / "relayops"
    files = {"pyproject.toml": daemon_pyproject(root).encode()}
    paths = [package / name for name in ("__init__.py", *RELAY_MODULES)]
    for tree in RELAY_PACKAGES:
        paths += sorted((package / tree).rglob("*"))
    for path in paths:
        if (
            path.is_file()
            and "__pycache__" not in path.parts
            and path.suffix != ".pyc"
            and path.relative_to(package).as_posix() not in OPERATOR_ONLY
        ):
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def source_digest(root: Path) -> str:
    """Digest of the daemon's staged tree and the relay lock: what keys the cached set."""
    digest = hashlib.sha256()
    files = {**daemon_files(root), str(RELAY_LOCK): (root / RELAY_LOCK).read_bytes()}
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + data + b"\0")
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
    """The cached wheel set of the daemon for the hosts' Python (e.g. "3.11.2")."""
    root = root or project_root()
    cache = cache or wheel_cache()
    lock = root / RELAY_LOCK
    if not lock.is_file():
        raise DeployError(f"{lock} is missing: run `make lock` and commit requirements/")
    target = cache / f"{source_digest(root)}-py{python_full}"
    if target.is_dir() and any(target.glob("relayops_policyd-*.whl")):
        return wheel_set(target, python_full)
    cache.mkdir(parents=True, exist_ok=True)
    locked = {
        canonicalize_name(Requirement(line.split(" --hash=")[0]).name): line
        for line in locked_for_host(lock.read_text(), python_full)
    }
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
        source = _stage(root, Path(tmp) / "daemon")
        wheels = Path(tmp) / "wheels"
        _pip_wheel(["--no-deps", str(source)], str(wheels), str(root))
        for _ in range(20):  # each round adds the locked pins of what the last one needs
            missing = missing_requirements(wheels.glob("*.whl"), python_full)
            if not missing:
                break
            names = [canonicalize_name(Requirement(m).name) for m in missing]
            unlocked = [m for m, n in zip(missing, names, strict=True) if n not in locked]
            if unlocked:
                raise DeployError(
                    f"{RELAY_LOCK} lacks what the daemon needs on Python {python_full}: "
                    f"{', '.join(unlocked)}; run `make lock`"
                )
            pinned = Path(tmp) / "pinned.txt"
            pinned.write_text("\n".join(locked[n] for n in names) + "\n")
            _pip_wheel(
                ["--no-deps", "--require-hashes", "-r", str(pinned)], str(wheels), str(RELAY_LOCK)
            )
        shutil.rmtree(target, ignore_errors=True)
        wheels.rename(target)
    _prune(cache, keep=KEEP)
    return wheel_set(target, python_full)


def _stage(root: Path, into: Path) -> Path:
    """Write the daemon's tree to build from (setuptools writes build/ beside it)."""
    for name, data in daemon_files(root).items():
        path = into / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return into


def _prune(cache: Path, *, keep: int) -> None:
    builds = sorted(
        (p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)
