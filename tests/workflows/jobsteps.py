"""What a GitHub-hosted runner reads from a workflow, as pure functions the lab test drives.

`tests/workflows/test_jobs_run.py` runs the workflows' jobs in a Debian 12 chroot; this
module holds the parts that need no root: the jobs and their steps in order, the
`${{ … }}` substitution, the `if:` conditions, the `$GITHUB_ENV` file format, and the
retargeting of the production inventory to the lab.

Hand-written because no maintained Python library evaluates GitHub's expression
language; only the forms the three workflows use are understood, and any other one
raises `Unsupported`, so a new construct in a workflow fails the test instead of being
silently read wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


class Unsupported(ValueError):
    """A workflow construct this emulation does not understand (so it cannot vouch for it)."""


@dataclass(frozen=True)
class Step:
    name: str
    run: str | None = None  # a shell script, or None for a `uses:` step
    uses: str | None = None
    with_: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    if_: str | None = None


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    steps: tuple[Step, ...]
    container: str | None = None  # image of `container:`; None runs on the runner itself
    env: Mapping[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    if_: str | None = None


def _text(value: object) -> str:
    # YAML gives numbers and booleans for `fetch-depth: 0`, `if: true`: GitHub sees strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strings(raw: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): _text(v) for k, v in (raw or {}).items()}


# Keys whose meaning the emulation reproduces, or that change nothing on one machine
# (permissions, concurrency, timeouts, the environment's protection rules).
WORKFLOW_KEYS = {"name", "on", "permissions", "concurrency", "env", "jobs"}
JOB_KEYS = {
    "name", "runs-on", "container", "permissions", "timeout-minutes", "steps", "env",
    "needs", "if", "environment", "concurrency",
}  # fmt: skip
STEP_KEYS = {"name", "run", "uses", "with", "env", "if", "id"}


def _known(keys: Iterable[object], allowed: set[str], where: str) -> None:
    unknown = sorted({str(k) for k in keys} - allowed)
    if unknown:
        raise Unsupported(f"{where}: {', '.join(unknown)} not emulated")


def parse_jobs(text: str) -> dict[str, Job]:
    """The jobs of a workflow file, in file order, each with its steps in order.

    The workflow's own `env:` is merged under each job's, as GitHub does.
    """
    data = YAML(typ="safe").load(text)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        raise Unsupported("not a workflow: no `jobs:` mapping")
    _known(data, WORKFLOW_KEYS, "workflow")
    workflow_env = _strings(data.get("env"))
    jobs: dict[str, Job] = {}
    for job_id, spec in data["jobs"].items():
        _known(spec, JOB_KEYS, f"job {job_id}")
        container = spec.get("container")
        image = container.get("image") if isinstance(container, dict) else container
        needs = spec.get("needs", ())
        steps = []
        for index, raw in enumerate(spec["steps"]):
            _known(raw, STEP_KEYS, f"{job_id} step {index + 1}")
            if ("run" in raw) == ("uses" in raw):
                raise Unsupported(f"{job_id} step {index + 1}: needs exactly one of run/uses")
            name = raw.get("name") or raw.get("run") or raw["uses"]
            steps.append(
                Step(
                    name=str(name),
                    run=raw.get("run"),
                    uses=raw.get("uses"),
                    with_=_strings(raw.get("with")),
                    env=_strings(raw.get("env")),
                    if_=None if raw.get("if") is None else _text(raw["if"]),
                )
            )
        jobs[str(job_id)] = Job(
            id=str(job_id),
            name=str(spec.get("name", job_id)),
            steps=tuple(steps),
            container=None if image is None else str(image),
            env={**workflow_env, **_strings(spec.get("env"))},
            needs=(needs,) if isinstance(needs, str) else tuple(needs),
            if_=None if spec.get("if") is None else _text(spec["if"]),
        )
    return jobs


def load_jobs(path: Path) -> dict[str, Job]:
    return parse_jobs(path.read_text())


def action_name(uses: str) -> str:
    """`actions/checkout@<sha> # v4` -> `actions/checkout`."""
    return uses.split("@", 1)[0]


_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_PATH = re.compile(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*")


def lookup(path: str, context: Mapping[str, Any]) -> Any:
    """`github.event.pull_request.number` in nested mappings; Unsupported if absent."""
    if not _PATH.fullmatch(path):
        raise Unsupported(f"expression {path!r}: only context paths are supported here")
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise Unsupported(f"expression {path!r}: the test gives no value for it")
        value = value[part]
    return value


def substitute(text: str, context: Mapping[str, Any]) -> str:
    """Every `${{ path }}` replaced by its value, as the runner does before a step starts."""
    return _EXPR.sub(lambda m: _text(lookup(m.group(1), context)), text)


_STATUS = {"always()", "success()", "failure()", "cancelled()", "!cancelled()"}
_EQUALS = re.compile(r"(\S+)\s*==\s*(\S+)")


def _operand(token: str, context: Mapping[str, Any]) -> str:
    if len(token) >= 2 and token[0] == token[-1] == "'":
        return token[1:-1]
    return _text(lookup(token, context))


def should_run(condition: str | None, *, failed: bool, context: Mapping[str, Any]) -> bool:
    """A step's or job's `if:`; `failed`: an earlier step (or a needed job) failed.

    Without a status function GitHub adds `success() &&`: such a step is skipped
    after a failure. Nothing is ever cancelled here, so `!cancelled()` always holds.
    """
    expr = (condition or "").strip()
    match = _EXPR.fullmatch(expr)
    if match:
        expr = match.group(1).strip()
    if not expr:
        return not failed
    if expr in _STATUS:
        return {
            "always()": True,
            "success()": not failed,
            "failure()": failed,
            "cancelled()": False,
            "!cancelled()": True,
        }[expr]
    equals = _EQUALS.fullmatch(expr)
    if equals:
        left, right = (_operand(t, context) for t in equals.groups())
        return not failed and left == right
    raise Unsupported(f"if: {condition!r} is not a form this emulation evaluates")


_HEREDOC = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)<<(.+)$")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_github_env(text: str) -> dict[str, str]:
    """The `$GITHUB_ENV` file a step appended to: `NAME=value` lines and `NAME<<EOF` blocks."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        heredoc = _HEREDOC.match(line)
        if heredoc:
            name, delimiter = heredoc.groups()
            body: list[str] = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            if index == len(lines):
                raise Unsupported(f"GITHUB_ENV: {name}<<{delimiter} is never closed")
            index += 1
            found[name] = "\n".join(body)
            continue
        assign = _ASSIGN.match(line)
        if not assign:
            raise Unsupported(f"GITHUB_ENV: cannot read line {line!r}")
        found[assign.group(1)] = assign.group(2)
    return found


_INVENTORY = re.compile(r"(--inventory[ =])(?:inventory/)?production(\.py)?(?=[\s;|&>]|$)")


def retarget(script: str, inventory: str = "lab") -> str:
    """A step's command with the production inventory swapped for `inventory`.

    `--inventory inventory/production.py` keeps its form (`inventory/lab.py`), and so
    does `--inventory production`. Any other mention of production is left alone and
    reported by `production_mentions`, so the test sees what it did not retarget.
    """

    def swap(match: re.Match[str]) -> str:
        path = match.group(0)[len(match.group(1)) :]
        replaced = path.replace("production", inventory)
        return match.group(1) + replaced

    return _INVENTORY.sub(swap, script)


def production_mentions(script: str) -> list[str]:
    """Lines of a (retargeted) script that still name production."""
    return [line for line in script.splitlines() if "production" in line]
