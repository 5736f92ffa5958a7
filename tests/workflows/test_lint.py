"""The workflows pass two independent linters (actionlint, zizmor) with zero findings,
and a structural check of our own rules that does not depend on either linter's version."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SCRIPTS = ["install-deps", "ci-secrets", "plan-comment", "nightly-issue", "bench-deps"]
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def tool(name: str) -> str:
    """A linter installed in the project's venv (dev dependencies, requirements/lock.txt)."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: ./scripts/install-deps installs it"
    return found


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    return {on: None} if isinstance(on, str) else dict(on)


def steps(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"]]


def test_there_are_the_three_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "nightly.yml"]


def test_actionlint_finds_nothing() -> None:
    # With shellcheck on PATH actionlint also checks every run: script.
    assert shutil.which("shellcheck"), "shellcheck is missing (scripts/apt-packages.txt)"
    done = subprocess.run(
        [tool("actionlint"), "-no-color", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def zizmor(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--format", "json", *args, str(ROOT / ".github/workflows")],
        capture_output=True,
        text=True,
        check=False,
    )
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def test_zizmor_finds_nothing() -> None:
    assert [f["ident"] for f in zizmor()] == []


def test_zizmor_pedantic_finds_only_the_unpinned_debian_image() -> None:
    # debian:12 is not pinned by digest: the digest cannot be looked up from here
    # (docs/ci.md tells the operator how); everything else the pedantic persona wants is done.
    found = {f["ident"] for f in zizmor("--persona", "pedantic")}
    assert found == {"unpinned-images"}


def test_shellcheck_finds_nothing_in_the_scripts() -> None:
    done = subprocess.run(
        ["shellcheck", *(str(ROOT / "scripts" / s) for s in SCRIPTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(path: Path) -> None:
    uses = [step["uses"] for _, step in steps(load(path)) if "uses" in step]
    assert uses, "every workflow checks the repository out"
    assert [u for u in uses if not PINNED.match(u)] == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_none_by_default_and_declared_per_job(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}
    for job, spec in workflow["jobs"].items():
        assert "permissions" in spec, f"{path.name}: job {job} has no permissions"
        assert "write-all" not in str(spec["permissions"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_inside_a_run_script(path: Path) -> None:
    runs = [(job, step["run"]) for job, step in steps(load(path)) if "run" in step]
    assert runs
    assert [(job, run) for job, run in runs if "${{" in run] == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkout_keeps_no_credentials_and_no_workflow_run(path: Path) -> None:
    workflow = load(path)
    assert "workflow_run" not in triggers(workflow)
    for job, step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job


def test_each_step_is_a_make_target_or_a_relayops_command() -> None:
    allowed = re.compile(r"^(make [\w-]+|\.venv/bin/relayops \w+\b.*)$")
    bootstrap = "apt-get update -qq && apt-get install"
    for path in WORKFLOWS:
        for job, step in steps(load(path)):
            run = step.get("run")
            if run is None or run.startswith(bootstrap):
                continue
            assert allowed.match(run.strip()), f"{path.name} {job}: {run}"


def test_deploy_job() -> None:
    workflow = load(ROOT / ".github/workflows/deploy.yml")
    assert triggers(workflow) == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert workflow["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
    deploy = workflow["jobs"]["deploy"]
    assert deploy["environment"] == "production"
    assert deploy["container"]["image"] == "debian:12"
    runs = [s.get("run", "") for s in deploy["steps"]]
    assert (
        ".venv/bin/relayops deploy --inventory inventory/production.py --canary "
        "relay1.relay.example.net" in runs
    )
    secrets = runs.index("make ci-secrets")
    remove = deploy["steps"][runs.index("make ci-secrets-remove")]
    assert remove["if"] == "always()" and runs.index("make ci-secrets-remove") == len(runs) - 1
    assert secrets < runs.index(next(r for r in runs if "relayops deploy" in r))
    # verify: after deploy, only when it succeeded (no always(), no failure())
    verify = workflow["jobs"]["verify"]
    assert verify["needs"] == "deploy" and "if" not in verify


def test_nightly_gets_secrets_and_reports_to_one_issue() -> None:
    workflow = load(ROOT / ".github/workflows/nightly.yml")
    assert set(triggers(workflow)) == {"schedule", "workflow_dispatch"}
    nightly = workflow["jobs"]["nightly"]
    secret_step = next(s for s in nightly["steps"] if s.get("run") == "make ci-secrets")
    assert set(secret_step["env"]) == {"SSH_PRIVATE_KEY", "RELAYOPS_AGE_IDENTITY_DATA"}
    runs = [s.get("run", "") for s in nightly["steps"]]
    assert ".venv/bin/relayops drift --inventory production" in runs
    issue = workflow["jobs"]["issue"]
    assert issue["needs"] == "nightly" and issue["if"] == "always()"
    assert issue["permissions"] == {"contents": "read", "issues": "write"}
    assert issue["steps"][-1]["env"]["NIGHTLY_RESULT"] == "${{ needs.nightly.result }}"


def test_plan_job_needs_only_python_and_comment_job_holds_the_write_token() -> None:
    jobs = load(ROOT / ".github/workflows/ci.yml")["jobs"]
    assert "container" not in jobs["plan"]
    assert jobs["plan"]["permissions"] == {"contents": "read"}
    assert [s.get("run") for s in jobs["plan"]["steps"]][2] == "make python-deps"
    assert jobs["comment"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert jobs["comment"]["steps"][-1]["run"] == "make plan-comment"
