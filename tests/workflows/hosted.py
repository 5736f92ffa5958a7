"""A GitHub-hosted runner, emulated in Debian 12 chroots, for tests/workflows/test_jobs_run.py.

Two roots are unpacked from one cached debootstrap minbase of bookworm:

- the *runner* root: what ubuntu-latest gives a job — an unprivileged `runner` user with
  passwordless sudo, git, make, Python 3 with venv, CA certificates, and `gh` (a fake
  that records its calls: the GitHub API is not reachable here);
- the *container* root: `debian:12` as it comes (no git, no make, no Python): container
  jobs run as root and their bootstrap step must install what the later steps need.

The lab's cached image is not used although it is a debootstrap too: it carries the
relay packages (Python, Postfix…), which would hide a package a bootstrap step forgot.

Both roots share the host's network namespace (pypi.org, the Debian mirror and the
lab's 198.18.0.0/24 bridge are reachable, as from a runner next to production).
`roots` undoes every mount, deepest first, and deletes both roots, also after a failure.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayops.lab.image import find_mirror
from relayops.lab.mounts import remove_tree, unmount_tree
from relayops.lab.runner import Runner
from relayops.lab.topology import CACHE_DIR
from workflows.jobsteps import (
    Job,
    Step,
    Unsupported,
    action_name,
    parse_github_env,
    retarget,
    should_run,
    substitute,
)

SUITE = "bookworm"
MINBASE = CACHE_DIR / f"runner-minbase-{SUITE}.tar.zst"
# What ubuntu-latest has that the workflows' runner-side jobs use (gh is faked).
RUNNER_PACKAGES = ("sudo", "git", "make", "python3", "python3-venv", "ca-certificates")
HOST_LOCAL_CAS = Path("/usr/local/share/ca-certificates")
RUNNER_UID = 1001  # the uid of `runner` on GitHub's images
STEP_TIMEOUT = 900
UPSTREAM_DIR = "/srv/github/acme/relayops.git"  # GitHub's copy of the repository, here
UPSTREAM_URL = f"file://{UPSTREAM_DIR}"
FAKE_GH = r"""#!/bin/bash
# Fake gh (tests/workflows/hosted.py): records each call, each argument NUL-terminated,
# the call ended by \x1e; answers as a repository with no comment and no issue yet.
{ printf '%s\0' "$@"; printf '\036'; } >> /tmp/gh-calls
case "$1 $2" in
"api --method") echo "https://github.example/acme/relayops/pull/12#issuecomment-1" ;;
"issue create") echo "https://github.example/acme/relayops/issues/1" ;;
esac
"""


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def minbase_tarball(runner: Runner) -> Path:
    """The cached minbase tarball, made once with debootstrap (about a minute)."""
    with _locked(MINBASE.with_suffix(".lock")):
        if MINBASE.is_file():
            return MINBASE
        build = CACHE_DIR / f"runner-minbase-{SUITE}.build"
        remove_tree(runner, build)
        build.mkdir(parents=True)
        build.chmod(0o755)  # a root of mode 700 breaks every daemon user (_apt among them)
        mirror = find_mirror(suite=SUITE)
        runner.run(["debootstrap", "--variant=minbase", SUITE, str(build), mirror], timeout=1200)
        partial = MINBASE.with_suffix(".partial")
        runner.run(["tar", "--zstd", "-C", str(build), "-cpf", str(partial), "."], timeout=600)
        partial.rename(MINBASE)
        remove_tree(runner, build)
    return MINBASE


@dataclass
class StepRun:
    name: str
    ran: bool
    returncode: int = 0
    output: str = ""
    seconds: float = 0.0


@dataclass
class JobRun:
    job: str
    skipped: bool = False
    steps: list[StepRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def result(self) -> str:
        return "failure" if any(s.ran and s.returncode != 0 for s in self.steps) else "success"

    def step(self, name_start: str) -> StepRun:
        found = [s for s in self.steps if s.name.startswith(name_start)]
        assert len(found) == 1, f"{len(found)} steps of {self.job} start with {name_start!r}"
        return found[0]

    def log(self) -> str:
        lines = []
        for s in self.steps:
            state = f"exit {s.returncode}, {s.seconds:.1f} s" if s.ran else "skipped"
            lines += [f"--- {self.job} / {s.name} ({state})", s.output.rstrip()]
        return "\n".join(lines)


@dataclass
class Machine:
    """One chroot and the account its jobs run as (a runner VM or a job container)."""

    root: Path
    user: str  # "runner" or "root"
    home: str  # inside the root
    work: str  # inside the root: the workspace's parent, and the runner's temp beside it
    runner: Runner = field(default_factory=Runner)
    pip_cache: str = "/var/cache/pip-shared"

    def inside(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def exec(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str = "/",
        as_root: bool = False,
        timeout: float = STEP_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the root with exactly `env` (nothing of the test's environment)."""
        user = [] if as_root or self.user == "root" else [f"--userspec={self.user}:{self.user}"]
        assignments = [f"{k}={v}" for k, v in env.items()]
        command = ["chroot", *user, str(self.root), "/usr/bin/env", "-i", "-C", cwd]
        return subprocess.run(
            [*command, *assignments, *argv],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def admin(self, script: str, *, timeout: float = 600) -> str:
        """A root shell command while preparing the root; raises on failure."""
        done = self.exec(
            ["/bin/bash", "-eo", "pipefail", "-c", script],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
                 "HOME": "/root", "LC_ALL": "C.UTF-8"},
            as_root=True,
            timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"in {self.root}: {script}\n{done.stdout}{done.stderr}")
        return done.stdout

    def close(self) -> None:
        unmount_tree(self.runner, self.root)

    def chown(self, path: str) -> None:
        if self.user != "root":
            self.admin(f"chown -R {self.user}:{self.user} {path}")


def unpack(runner: Runner, tarball: Path, root: Path) -> None:
    root.mkdir(parents=True)
    root.chmod(0o755)
    runner.run(["tar", "--zstd", "-C", str(root), "-xpf", str(tarball)], timeout=600)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    # This machine reaches the registries through a TLS proxy whose CA it trusts: the roots
    # trust it too, as a runner trusts its provider's. `update-ca-certificates` (run when
    # ca-certificates is installed) adds these to the system bundle pip and git read.
    local_cas = root / "usr/local/share/ca-certificates"
    local_cas.mkdir(parents=True, exist_ok=True)
    for cert in HOST_LOCAL_CAS.glob("*.crt"):
        shutil.copyfile(cert, local_cas / cert.name)


def mount_basics(runner: Runner, root: Path) -> None:
    """What a container or VM has: /proc, /sys, /dev, /dev/pts (mounted in this order)."""
    runner.run(["mount", "-t", "proc", "proc", str(root / "proc")])
    runner.run(["mount", "-t", "sysfs", "sysfs", str(root / "sys")])
    runner.run(["mount", "--bind", "/dev", str(root / "dev")])
    runner.run(["mount", "--bind", "/dev/pts", str(root / "dev/pts")])


def bind(runner: Runner, source: Path, root: Path, target: str) -> None:
    where = root / target.lstrip("/")
    where.mkdir(parents=True, exist_ok=True)
    runner.run(["mount", "--bind", str(source), str(where)])


def prepare_runner_root(machine: Machine) -> None:
    """ubuntu-latest's shape: `runner` with passwordless sudo, the tools, a fake `gh`."""
    machine.admin(
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
        + " ".join(RUNNER_PACKAGES)
        + " >/dev/null",
        timeout=900,
    )
    machine.admin(
        f"useradd --create-home --uid {RUNNER_UID} --shell /bin/bash runner"
        " && echo 'runner ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/runner"
        " && chmod 440 /etc/sudoers.d/runner"
    )
    gh = machine.inside("/usr/local/bin/gh")
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)


def gh_calls(machine: Machine) -> list[list[str]]:
    log = machine.inside("/tmp/gh-calls")
    if not log.exists():
        return []
    return [record.split("\0")[:-1] for record in log.read_text().split("\x1e")[:-1]]


@dataclass(frozen=True)
class Event:
    """What started the workflow: the event name and the commit the checkout takes."""

    name: str  # pull_request, push, schedule
    ref: str  # the branch (or commit) `actions/checkout` checks out by default


class Workflows:
    """Runs jobs the way the runner does: steps in order, `if:`, env, GITHUB_ENV."""

    def __init__(
        self,
        *,
        upstream: Path,
        artifacts: Path,
        context: Mapping[str, Any],
        inventory: str = "lab",
    ) -> None:
        self.upstream = upstream  # a bare repository on the host: GitHub's copy, here
        self.artifacts = artifacts
        self.context = context
        self.inventory = inventory

    def run(
        self, job: Job, machine: Machine, event: Event, needs: Mapping[str, str] | None = None
    ) -> JobRun:
        """Run `job`; `needs`: the results of the jobs it needs (`needs.<job>.result`)."""
        started = time.monotonic()
        record = JobRun(job.id)
        results = dict(needs or {})
        assert set(results) == set(job.needs), f"{job.id} needs {job.needs}, given {results}"
        github = {**self.context["github"], "event_name": event.name}
        context = {
            **self.context,
            "github": github,
            "needs": {k: {"result": v} for k, v in results.items()},
        }
        failed_need = any(r != "success" for r in results.values())
        if not should_run(job.if_, failed=failed_need, context=context):
            record.skipped = True
            return record
        workspace = f"{machine.work}/relayops/relayops"
        temp = f"{machine.work}/_temp"
        # A fresh machine per job, as GitHub gives: a new workspace, temp and home.
        machine.admin(
            f"rm -rf {machine.work} {machine.home} /tmp/gh-calls {UPSTREAM_DIR}"
            f" && mkdir -p {workspace} {temp} {machine.home}"
            f" && touch {temp}/github_env"
            + (f" && cp -rT /etc/skel {machine.home}" if machine.user != "root" else "")
        )
        # The repository "on GitHub", copied in and owned by the job's user (git refuses
        # to serve a repository another user owns).
        shutil.copytree(self.upstream, machine.inside(UPSTREAM_DIR))
        machine.chown(f"{machine.work} {machine.home} {UPSTREAM_DIR}")
        base = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": machine.home,
            "USER": machine.user,
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event.name,
            "GITHUB_REPOSITORY": str(self.context["github"]["repository"]),
            "GITHUB_WORKSPACE": workspace,
            "RUNNER_TEMP": temp,
            "GITHUB_ENV": f"{temp}/github_env",
            # Shared between jobs only to save downloads: pip checks every archive against
            # the lock's hashes, so a cache cannot change what is installed.
            "PIP_CACHE_DIR": machine.pip_cache,
        }
        job_env = {k: substitute(v, context) for k, v in job.env.items()}
        for step in job.steps:
            failed = record.result == "failure"
            if not should_run(step.if_, failed=failed, context=context):
                record.steps.append(StepRun(step.name, ran=False))
                continue
            began = time.monotonic()
            if step.uses is not None:
                rc, output = self._action(step, machine, event, workspace, base, context)
            else:
                exported = parse_github_env(machine.inside(f"{temp}/github_env").read_text())
                step_env = {k: substitute(v, context) for k, v in step.env.items()}
                env = {**base, **exported, **job_env, **step_env}
                script = machine.inside(f"{temp}/step.sh")
                script.write_text(retarget(step.run or "", self.inventory) + "\n")
                done = machine.exec(
                    ["bash", "--noprofile", "--norc", "-eo", "pipefail", f"{temp}/step.sh"],
                    env=env,
                    cwd=workspace,
                )
                rc, output = done.returncode, done.stdout + done.stderr
            record.steps.append(StepRun(step.name, True, rc, output, time.monotonic() - began))
        record.seconds = time.monotonic() - started
        return record

    def _action(
        self,
        step: Step,
        machine: Machine,
        event: Event,
        workspace: str,
        env: dict[str, str],
        context: Mapping[str, Any],
    ) -> tuple[int, str]:
        """The actions the workflows use, replaced by what they amount to here."""
        name = action_name(step.uses or "")
        inputs = {k: substitute(v, context) for k, v in step.with_.items()}
        if name == "actions/checkout":
            # What the action does, with the git the machine has (in a container: only after
            # the bootstrap step installed it): fetch the one ref, depth 1, unless
            # `fetch-depth: 0` asks for every branch (then origin/<branch> exist too).
            ref = inputs.get("ref") or event.ref
            every = "'+refs/heads/*:refs/remotes/origin/*'"
            fetch_all = (
                f"git fetch -q origin {every} && " if inputs.get("fetch-depth") == "0" else ""
            )
            depth = "" if fetch_all else "--depth 1 "
            script = (
                f"git init -q . && git remote add origin {UPSTREAM_URL} && {fetch_all}"
                f"git fetch -q {depth}origin {ref} && git checkout -q --detach FETCH_HEAD"
            )
            done = machine.exec(["bash", "-ec", script], env=env, cwd=workspace)
            return done.returncode, done.stdout + done.stderr
        if name == "actions/setup-python":
            # The runner root's python3 is Debian 12's 3.11 (the version asked for).
            want = inputs["python-version"]
            done = machine.exec(["python3", "--version"], env=env)
            ok = done.returncode == 0 and done.stdout.startswith(f"Python {want}.")
            return (0 if ok else 1), done.stdout + done.stderr
        if name == "actions/upload-artifact":
            into = self.artifacts / inputs["name"]
            into.mkdir(parents=True, exist_ok=True)
            missing = []
            for path in inputs["path"].split():
                source = machine.inside(f"{workspace}/{path}")
                if source.is_file():
                    shutil.copy2(source, into / Path(path).name)
                else:
                    missing.append(path)
            if missing and inputs.get("if-no-files-found") == "error":
                return 1, f"upload-artifact: no file {', '.join(missing)}"
            return 0, f"upload-artifact: {sorted(p.name for p in into.iterdir())}"
        if name == "actions/download-artifact":
            source = self.artifacts / inputs["name"]
            if not source.is_dir():
                return 1, f"download-artifact: no artifact {inputs['name']}"
            target = machine.inside(f"{workspace}/{inputs['path']}")
            shutil.copytree(source, target, dirs_exist_ok=True)
            machine.chown(f"{workspace}/{inputs['path'].split('/')[0]}")
            return 0, f"download-artifact: {sorted(p.name for p in target.iterdir())}"
        raise Unsupported(f"{step.uses}: no stand-in for this action")


@contextmanager
def roots(base: Path, container_binds: Mapping[str, Path]) -> Iterator[tuple[Machine, Machine]]:
    """(runner machine, container machine), unmounted and deleted afterwards."""
    runner = Runner()
    tarball = minbase_tarball(runner)
    made: list[Machine] = []
    try:
        for name, user, home, work in (
            ("runner", "runner", "/home/runner", "/home/runner/work"),
            ("container", "root", "/github/home", "/__w"),
        ):
            root = base / name
            unpack(runner, tarball, root)
            machine = Machine(root=root, user=user, home=home, work=work, runner=runner)
            made.append(machine)
            mount_basics(runner, root)
            # One pip cache per machine, owned by its user (pip ignores a cache it does not own).
            pip_cache = base / f"pip-cache-{name}"
            pip_cache.mkdir()
            uid = RUNNER_UID if user == "runner" else 0
            os.chown(pip_cache, uid, uid)
            bind(runner, pip_cache, root, machine.pip_cache)
            if user == "root":
                for target, source in container_binds.items():
                    bind(runner, source, root, target)
        prepare_runner_root(made[0])
        yield made[0], made[1]
    finally:
        errors = []
        for machine in reversed(made):
            try:
                machine.close()
                remove_tree(runner, machine.root)  # never crosses into a live mount
            except Exception as exc:  # keep unmounting the other root
                errors.append(exc)
        if errors:
            raise errors[0]
