"""The CI glue scripts, run for real against a fake `gh` on PATH that records its calls.

The fake answers `gh api …/comments` and `gh issue list` from canned JSON and applies
the script's own --jq filter to it with jq, so the filters are tested too.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- relayops-plan -->"

FAKE_GH = r"""#!/usr/bin/env bash
# Record the call: each argument NUL-terminated, the call ended by \x1e.
{ printf '%s\0' "$@"; printf '\036'; } >> "$FAKE_GH_DIR/calls"
jq_filter=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    if [ "${args[$i]}" = "--jq" ]; then jq_filter="${args[$((i + 1))]}"; fi
done
case "$1 $2" in
"api --paginate") jq -r "$jq_filter" "$FAKE_GH_DIR/comments.json" ;;
"api --method") echo "https://github.example/comment" ;;
"issue list") jq -r "$jq_filter" "$FAKE_GH_DIR/issues.json" ;;
esac
"""


@pytest.fixture
def fake_gh(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    (tmp_path / "comments.json").write_text("[]")
    (tmp_path / "issues.json").write_text("[]")
    return tmp_path


def run(script: str, fake: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": f"{fake / 'bin'}:{os.environ['PATH']}",
        "HOME": str(fake / "home"),
        "FAKE_GH_DIR": str(fake),
        **env,
    }
    return subprocess.run(
        [str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        cwd=fake,
    )


def calls(fake: Path) -> list[list[str]]:
    log = fake / "calls"
    if not log.exists():
        return []
    return [record.split("\0")[:-1] for record in log.read_text().split("\x1e")[:-1]]


# --- plan-comment ---------------------------------------------------------------

PR_ENV = {"GH_REPO": "acme/relays", "PR_NUMBER": "12"}
LIST = ["api", "--paginate", "repos/acme/relays/issues/12/comments", "--jq"]


def plan_file(fake: Path, first_line: str = MARKER) -> Path:
    path = fake / "plan.md"
    path.write_text(f"{first_line}\n## relayops plan\n")
    return path


def comment(cid: int, body: str, login: str = "github-actions[bot]") -> dict[str, object]:
    return {"id": cid, "body": body, "user": {"login": login}}


def test_plan_comment_posts_when_there_is_none(fake_gh: Path) -> None:
    (fake_gh / "comments.json").write_text(json.dumps([comment(5, "looks good")]))
    done = run("plan-comment", fake_gh, str(plan_file(fake_gh)), **PR_ENV)
    assert done.returncode == 0, done.stderr
    got = calls(fake_gh)
    assert got[0][:4] == LIST
    assert got[1:] == [
        [
            "api", "--method", "POST", "repos/acme/relays/issues/12/comments",
            "-F", f"body=@{fake_gh / 'plan.md'}", "--jq", ".html_url",
        ]
    ]  # fmt: skip
    assert done.stdout.endswith("plan-comment: posted a new comment\n")


def test_plan_comment_edits_the_last_plan_comment_of_the_bot(fake_gh: Path) -> None:
    comments = [
        comment(7, f"{MARKER}\nold plan"),
        comment(8, "a review remark"),
        comment(9, f"{MARKER}\nnewer plan"),
        comment(10, f"{MARKER}\npasted by a person", login="mallory"),
    ]
    (fake_gh / "comments.json").write_text(json.dumps(comments))
    done = run("plan-comment", fake_gh, str(plan_file(fake_gh)), **PR_ENV)
    assert done.returncode == 0, done.stderr
    assert calls(fake_gh)[1] == [
        "api", "--method", "PATCH", "repos/acme/relays/issues/comments/9",
        "-F", f"body=@{fake_gh / 'plan.md'}", "--jq", ".html_url",
    ]  # fmt: skip
    assert len(calls(fake_gh)) == 2
    assert done.stdout.endswith("plan-comment: updated comment 9\n")


def test_plan_comment_refuses_a_file_that_is_not_a_plan(fake_gh: Path) -> None:
    done = run("plan-comment", fake_gh, str(plan_file(fake_gh, "# hello")), **PR_ENV)
    assert done.returncode == 2
    assert "does not start with <!-- relayops-plan -->" in done.stderr
    assert calls(fake_gh) == []


# --- nightly-issue ----------------------------------------------------------------

NIGHTLY_ENV = {"GH_REPO": "acme/relays", "RUN_URL": "https://github.example/run/3"}
ISSUE_LIST = [
    "issue", "list", "--repo", "acme/relays", "--label", "nightly-check", "--state", "open",
    "--limit", "1", "--json", "number", "--jq", ".[0].number // empty",
]  # fmt: skip


def test_first_failure_opens_one_issue(fake_gh: Path) -> None:
    done = run("nightly-issue", fake_gh, "failure", **NIGHTLY_ENV)
    assert done.returncode == 0, done.stderr
    got = calls(fake_gh)
    assert got[0] == ISSUE_LIST
    assert got[1] == [
        "label", "create", "nightly-check", "--repo", "acme/relays", "--color", "B60205",
        "--force", "--description", "Opened and closed by the nightly workflow",
    ]  # fmt: skip
    assert got[2][:7] == [
        "issue",
        "create",
        "--repo",
        "acme/relays",
        "--title",
        "Nightly check failed",
        "--label",
    ]
    assert got[2][7:9] == ["nightly-check", "--body"]
    assert "failed: https://github.example/run/3" in got[2][9]
    assert len(got) == 3


def test_a_further_failure_comments_on_the_open_issue(fake_gh: Path) -> None:
    (fake_gh / "issues.json").write_text(json.dumps([{"number": 41}]))
    done = run("nightly-issue", fake_gh, "failure", **NIGHTLY_ENV)
    assert done.returncode == 0, done.stderr
    assert calls(fake_gh)[1:] == [
        [
            "issue", "comment", "41", "--repo", "acme/relays",
            "--body", "Still failing: https://github.example/run/3",
        ]
    ]  # fmt: skip


def test_green_closes_the_open_issue(fake_gh: Path) -> None:
    (fake_gh / "issues.json").write_text(json.dumps([{"number": 41}]))
    done = run("nightly-issue", fake_gh, "success", **NIGHTLY_ENV)
    assert done.returncode == 0, done.stderr
    assert calls(fake_gh)[1:] == [
        [
            "issue", "close", "41", "--repo", "acme/relays",
            "--comment", "Green again: https://github.example/run/3",
        ]
    ]  # fmt: skip


def test_green_without_an_issue_only_looks(fake_gh: Path) -> None:
    done = run("nightly-issue", fake_gh, "success", **NIGHTLY_ENV)
    assert (done.returncode, calls(fake_gh)) == (0, [ISSUE_LIST])


@pytest.mark.parametrize("result", ["cancelled", "skipped"])
def test_cancelled_or_skipped_leaves_the_issue_alone(fake_gh: Path, result: str) -> None:
    done = run("nightly-issue", fake_gh, result, **NIGHTLY_ENV)
    assert (done.returncode, calls(fake_gh)) == (0, [])


def test_unknown_result_is_a_usage_error(fake_gh: Path) -> None:
    done = run("nightly-issue", fake_gh, "neutral", **NIGHTLY_ENV)
    assert (done.returncode, calls(fake_gh)) == (2, [])


# --- ci-secrets -------------------------------------------------------------------


def secrets_env(fake: Path) -> dict[str, str]:
    (fake / "runner-temp").mkdir(exist_ok=True)
    return {
        "RUNNER_TEMP": str(fake / "runner-temp"),
        "GITHUB_ENV": str(fake / "github-env"),
        "SSH_PRIVATE_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END …-----",
        "RELAYOPS_AGE_IDENTITY_DATA": "AGE-SECRET-KEY-1TEST",
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_written_mode_600_and_removed(fake_gh: Path) -> None:
    env = secrets_env(fake_gh)
    done = run("ci-secrets", fake_gh, "write", **env)
    assert done.returncode == 0, done.stderr
    ssh_key = fake_gh / "home/.ssh/id_ed25519"
    age_key = fake_gh / "runner-temp/relayops-age-identity.txt"
    assert ssh_key.read_text() == env["SSH_PRIVATE_KEY"] + "\n"
    assert age_key.read_text() == "AGE-SECRET-KEY-1TEST\n"
    assert (mode(ssh_key), mode(age_key), mode(ssh_key.parent)) == (0o600, 0o600, 0o700)
    assert (fake_gh / "github-env").read_text() == f"RELAYOPS_AGE_IDENTITY={age_key}\n"

    again = run("ci-secrets", fake_gh, "write", **env)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr

    done = run("ci-secrets", fake_gh, "remove", **env)
    assert done.returncode == 0
    assert not ssh_key.exists() and not age_key.exists()
    assert run("ci-secrets", fake_gh, "remove", **env).returncode == 0  # idempotent


@pytest.mark.parametrize("missing", ["SSH_PRIVATE_KEY", "RELAYOPS_AGE_IDENTITY_DATA"])
def test_an_empty_secret_stops_the_job(fake_gh: Path, missing: str) -> None:
    env = {**secrets_env(fake_gh), missing: ""}
    done = run("ci-secrets", fake_gh, "write", **env)
    assert done.returncode == 2
    assert f"ci-secrets: {missing} is empty" in done.stderr
    assert not (fake_gh / "home/.ssh/id_ed25519").exists()
