"""The pure half of the hosted-runner emulation (tests/workflows/jobsteps.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.jobsteps import (
    Step,
    Unsupported,
    action_name,
    load_jobs,
    parse_github_env,
    parse_jobs,
    production_mentions,
    retarget,
    should_run,
    substitute,
)

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"

GITHUB: dict[str, object] = {
    "repository": "acme/relays",
    "run_id": "77",
    "event_name": "pull_request",
    "event": {"pull_request": {"number": 12, "head": {"repo": {"full_name": "acme/relays"}}}},
}
CONTEXT = {
    "github": GITHUB,
    "secrets": {"DEPLOY_SSH_KEY": "-----BEGIN KEY-----\nabc\n-----END KEY-----"},
}

WORKFLOW = """\
on: push
env: {A: "0", W: "w"}
jobs:
  build:
    runs-on: ubuntu-latest
    container:
      image: debian:12
    env: {A: "1"}
    steps:
      - name: first
        run: echo one
      - uses: actions/checkout@0123 # v4
        with:
          fetch-depth: 0
          persist-credentials: false
      - run: echo three
        if: always()
        env: {B: "${{ github.run_id }}"}
  after:
    needs: build
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo four
"""


def test_jobs_and_steps_in_file_order() -> None:
    jobs = parse_jobs(WORKFLOW)
    assert list(jobs) == ["build", "after"]
    build = jobs["build"]
    assert (build.container, build.needs, build.if_) == ("debian:12", (), None)
    assert dict(build.env) == {"A": "1", "W": "w"}  # the job's A wins over the workflow's
    assert build.steps == (
        Step(name="first", run="echo one"),
        Step(
            name="actions/checkout@0123",
            uses="actions/checkout@0123",
            with_={"fetch-depth": "0", "persist-credentials": "false"},
        ),
        Step(
            name="echo three", run="echo three", env={"B": "${{ github.run_id }}"}, if_="always()"
        ),
    )
    assert (jobs["after"].container, jobs["after"].needs, jobs["after"].if_) == (
        None,
        ("build",),
        "always()",
    )


def test_a_step_with_both_run_and_uses_is_refused() -> None:
    bad = "jobs:\n  j:\n    steps:\n      - run: x\n        uses: a/b@c\n"
    with pytest.raises(Unsupported, match="j step 1: needs exactly one of run/uses"):
        parse_jobs(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("defaults: {run: {shell: sh}}\njobs: {}\n", "workflow: defaults not emulated"),
        ("jobs:\n  j:\n    services: {}\n    steps: []\n", "job j: services not emulated"),
        (
            "jobs:\n  j:\n    steps:\n      - run: x\n        working-directory: d\n",
            "j step 1: working-directory not emulated",
        ),
    ],
)
def test_what_is_not_emulated_is_refused(text: str, message: str) -> None:
    with pytest.raises(Unsupported, match=message):
        parse_jobs(text)


def test_the_real_workflows_parse() -> None:
    names = ("ci", "deploy", "nightly")
    assert {name: list(load_jobs(WORKFLOWS / f"{name}.yml")) for name in names} == {
        "ci": ["test", "plan", "comment"],
        "deploy": ["deploy", "verify"],
        "nightly": ["nightly", "issue"],
    }  # fmt: skip


def test_action_name_drops_the_pin() -> None:
    assert (
        action_name("actions/checkout@11d5960a326750d5838078e36cf38b85af677262")
        == "actions/checkout"
    )


def test_substitute_each_expression() -> None:
    text = (
        "${{ github.repository }}/runs/${{github.run_id}} #${{ github.event.pull_request.number }}"
    )
    assert substitute(text, CONTEXT) == "acme/relays/runs/77 #12"
    assert substitute("no expression", CONTEXT) == "no expression"
    assert substitute("${{ secrets.DEPLOY_SSH_KEY }}", CONTEXT).splitlines()[1] == "abc"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${{ github.token }}", "the test gives no value for it"),
        ("${{ github.event.pull_request.number.x }}", "the test gives no value for it"),
        ("${{ format('{0}', github.run_id) }}", "only context paths are supported here"),
    ],
)
def test_substitute_refuses_what_it_cannot_know(text: str, message: str) -> None:
    with pytest.raises(Unsupported, match=message):
        substitute(text, CONTEXT)


@pytest.mark.parametrize(
    ("condition", "failed", "expected"),
    [
        (None, False, True),
        (None, True, False),
        ("always()", True, True),
        ("${{ always() }}", True, True),
        ("${{ !cancelled() }}", True, True),
        ("!cancelled()", False, True),
        ("success()", True, False),
        ("failure()", True, True),
        ("failure()", False, False),
        ("github.event_name == 'pull_request'", False, True),
        ("github.event_name == 'pull_request'", True, False),
        ("github.event_name == 'push'", False, False),
        ("github.event.pull_request.head.repo.full_name == github.repository", False, True),
    ],
)
def test_should_run(condition: str | None, failed: bool, expected: bool) -> None:
    assert should_run(condition, failed=failed, context=CONTEXT) is expected


def test_should_run_refuses_other_forms() -> None:
    with pytest.raises(Unsupported, match="is not a form this emulation evaluates"):
        should_run("always() && failure()", failed=False, context=CONTEXT)


def test_github_env_lines_and_heredocs() -> None:
    text = "A=1\nKEY=/tmp/x=y\n\nMULTI<<EOF_1\nline one\nline two\nEOF_1\nB=\n"
    assert parse_github_env(text) == {
        "A": "1",
        "KEY": "/tmp/x=y",
        "MULTI": "line one\nline two",
        "B": "",
    }
    assert parse_github_env("") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("X<<EOF\nnever closed\n", "X<<EOF is never closed"),
        ("not an assignment\n", "cannot read line"),
    ],
)
def test_github_env_refuses_what_the_runner_would_refuse(text: str, message: str) -> None:
    with pytest.raises(Unsupported, match=message):
        parse_github_env(text)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            ".venv/bin/relayops deploy --inventory inventory/production.py --canary relay1.x",
            ".venv/bin/relayops deploy --inventory inventory/lab.py --canary relay1.x",
        ),
        (
            ".venv/bin/relayops drift --inventory production",
            ".venv/bin/relayops drift --inventory lab",
        ),
        (
            "relayops check --inventory=production > out.json",
            "relayops check --inventory=lab > out.json",
        ),
        ("relayops plan --inventory production-eu", "relayops plan --inventory production-eu"),
        ("relayops plan --inventory productions", "relayops plan --inventory productions"),
        ("echo production", "echo production"),
    ],
)
def test_retarget(script: str, expected: str) -> None:
    assert retarget(script) == expected


def test_production_mentions_names_what_retarget_left() -> None:
    script = "relayops deploy --inventory production\necho production stays\nmake test\n"
    assert production_mentions(retarget(script)) == ["echo production stays"]


def job_runs(workflow: str, job: str, *, failed: bool = False, **github: object) -> bool:
    spec = load_jobs(WORKFLOWS / f"{workflow}.yml")[job]
    context = {"github": {**GITHUB, **github}}
    return should_run(spec.if_, failed=failed, context=context)


def test_the_real_job_conditions() -> None:
    # plan: pull requests only; comment: not for a fork's pull request (read-only token).
    assert job_runs("ci", "plan", event_name="pull_request") is True
    assert job_runs("ci", "plan", event_name="push") is False
    fork = {"pull_request": {"head": {"repo": {"full_name": "mallory/relays"}}}}
    assert job_runs("ci", "comment") is True
    assert job_runs("ci", "comment", event=fork) is False
    assert job_runs("ci", "comment", failed=True) is False  # the plan failed: no comment
    # verify only after a deploy that succeeded; the nightly issue whatever happened.
    assert job_runs("deploy", "verify", failed=True) is False
    assert job_runs("nightly", "issue", failed=True) is True
