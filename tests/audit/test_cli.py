"""`relayops audit` over the generated history (tests/audit/history_repo.py).

Golden files: `UPDATE_GOLDEN=1 pytest tests/audit` rewrites tests/audit/golden/.
Commit ids and SSH key fingerprints change on every run; they are replaced by
`<commit-1>`…`<commit-6>` (oldest first) and `<key>` before comparing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from audit.history_repo import QUOTA_RAISED_AT, History, build
from relayops.cli import cli

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def run(history: History, *args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", "--repo", str(history.repo), *args])


def audit_json(history: History, *args: str) -> dict[str, Any]:
    result = run(history, "--json", *args)
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.output)
    return payload


def commit_names(history: History) -> dict[str, str]:
    import subprocess

    shas = subprocess.run(
        ["git", "-C", str(history.repo), "rev-list", "--first-parent", "--reverse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {sha: f"<commit-{n}>" for n, sha in enumerate(shas, 1)}


def normalise(history: History, text: str) -> str:
    for sha, name in commit_names(history).items():
        text = text.replace(sha, name).replace(sha[:10], name)
    return re.sub(r"SHA256:[A-Za-z0-9+/]{43}", "<key>", text)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual)
    assert path.exists(), f"{path} missing: run UPDATE_GOLDEN=1 pytest tests/audit"
    assert actual == path.read_text(), f"{name} differs: UPDATE_GOLDEN=1 pytest tests/audit"


def titles(payload: dict[str, Any]) -> list[str]:
    return [c["title"] for c in payload["commits"]]


def lines(payload: dict[str, Any]) -> list[str]:
    """Each change as `subject path change old new`, for compact exact assertions."""
    out = []
    for commit in payload["commits"]:
        for c in commit["changes"]:
            out.append(
                " ".join(
                    str(x)
                    for x in (
                        c["subject"],
                        c["path"] or "-",
                        c["change"],
                        c.get("old", "-"),
                        c.get("new", "-"),
                    )
                )
            )
    return out


# --- the whole history, exactly ---------------------------------------------------------


def test_history_json_golden(history: History) -> None:
    result = run(history, "--json")
    assert result.exit_code == 0, result.output
    assert result.output.startswith('{\n  "ok": true,')
    check_golden("history.json", normalise(history, result.output))


def test_history_markdown_golden(history: History) -> None:
    result = run(history, "--markdown")
    assert result.exit_code == 0, result.output
    check_golden("history.md", normalise(history, result.output))


def test_history_text_golden(history: History) -> None:
    result = run(history)
    assert result.exit_code == 0, result.output
    check_golden("history.txt", normalise(history, result.output))


def test_commits_prs_authors_and_signatures(history: History) -> None:
    payload = audit_json(history)
    summary = [(c["title"], c["author"], c["pr"], c["signature"]) for c in payload["commits"]]
    assert summary == [
        ("Add typo customer", "Eve Intern", None, "bad"),
        ("Remove initech", "Alice Admin", None, "unsigned"),
        ("Raise acme quota (#13)", "Dave Sales", 13, "good"),
        ("Merge pull request #12 from bob/initech", "Carol Merger", 12, "unsigned"),
        ("Rename umbrella", "Alice Admin", None, "unsigned"),
        ("Initial policy", "Alice Admin", None, "unsigned"),
    ]
    signed = payload["commits"][2]
    assert signed["signer"] == "dave@relay.example.net"
    assert signed["signature_detail"] == "good signature"
    assert payload["commits"][0]["signature_detail"] == "good signature, unknown validity"
    # 65 before the milter's plan fields; the initial commit adds 3 of them to each of 3 plans
    assert payload["changes"] == 74


def test_merge_is_one_entry_against_its_first_parent(history: History) -> None:
    """Bob's two commits are not listed; the reordered users are no change."""
    payload = audit_json(history, "--since", "2026-01-12", "--until", "2026-01-12")
    assert titles(payload) == ["Merge pull request #12 from bob/initech"]
    assert lines(payload) == [
        "acme domains[1].dkim.selector changed rly2026 rly2027",
        "initech status changed active suspended",
        "initech status_reason added - invoice unpaid for 30 days",
        "initech status_date added - 2026-01-09",
    ]
    status = payload["commits"][0]["changes"][1]
    assert status["note"] == {
        "status_reason": "invoice unpaid for 30 days",
        "status_date": "2026-01-09",
    }


def test_rename_and_delete(history: History) -> None:
    payload = audit_json(history, "--since", "2026-01-11", "--until", "2026-01-11")
    assert lines(payload) == ["umbrella-health - renamed umbrella umbrella-health"]
    payload = audit_json(history, "--customer", "initech", "--since", "2026-02-15")
    assert lines(payload) == [
        "initech - removed - -",
        "initech name removed Initech -",
        "initech contact removed it@initech.example -",
        "initech status removed suspended -",
        "initech status_reason removed invoice unpaid for 30 days -",
        "initech status_date removed 2026-01-09 -",
        "initech plan removed starter -",
        "initech placement removed {'pool': 'shared-us'} -",
        "initech domains removed [{'name': 'initech.example', 'dkim': {'selector': 's1'}}] -",
        "initech users removed [{'login': 'initech', 'password': '{SHA512-CRYPT}#52bdd448'}] -",
        "initech timezone removed UTC -",
    ]


def test_customer_filter_follows_a_rename(history: History) -> None:
    by_old = audit_json(history, "--customer", "umbrella")
    assert titles(by_old) == ["Rename umbrella", "Initial policy"]
    by_new = audit_json(history, "--customer", "umbrella-health")
    assert titles(by_new) == ["Rename umbrella"]


def test_field_filter(history: History) -> None:
    payload = audit_json(history, "--field", "quota_override")
    assert lines(payload) == [
        "acme quota_override added - 12000",
        "umbrella quota_override added - 15000",
    ]
    payload = audit_json(history, "--field", "domains", "--customer", "acme")
    assert lines(payload)[0] == "acme domains[1].dkim.selector changed rly2026 rly2027"
    assert titles(payload) == ["Merge pull request #12 from bob/initech", "Initial policy"]
    # a prefix of a name is not a field: `status` does not match `status_reason`
    payload = audit_json(history, "--field", "status", "--until", "2026-01-31")
    assert lines(payload) == [
        "initech status changed active suspended",
        "acme status added - active",
        "initech status added - active",
        "umbrella status added - active",
    ]


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("2026-02-01", "2026-02-01", ["Raise acme quota (#13)"]),
        ("2026-02-02", "2026-02-14", []),
        ("2026-01-13", "2026-01-31", []),
        (QUOTA_RAISED_AT, QUOTA_RAISED_AT, ["Raise acme quota (#13)"]),
        ("2026-02-01T12:00:01Z", "2026-02-15", ["Remove initech"]),
        (
            "2026-01-01",
            "2026-02-01T11:59:59Z",
            ["Merge pull request #12 from bob/initech", "Rename umbrella", "Initial policy"],
        ),
    ],
)
def test_since_until_both_sides(
    history: History, since: str, until: str, expected: list[str]
) -> None:
    assert titles(audit_json(history, "--since", since, "--until", until)) == expected


# --- the policy at a date -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "quota", "source", "override"),
    [
        ("2026-01-31", 10000, "plan business", False),
        ("2026-02-01T11:59:59Z", 10000, "plan business", False),
        ("2026-02-01T12:00:00Z", 12000, "quota_override", True),
        ("2026-02-01", 12000, "quota_override", True),  # a bare date: the end of that day
        ("2026-02-01T13:00:00+01:00", 12000, "quota_override", True),
    ],
)
def test_at_acme_quota_both_sides_of_the_change(
    history: History, at: str, quota: int, source: str, override: bool
) -> None:
    payload = audit_json(history, "--at", at, "--customer", "acme")
    acme = payload["customer"]
    assert (acme["effective_quota"], acme["quota_source"]) == (quota, source)
    assert ("quota_override" in acme) is override
    assert payload["at"] == at


def test_at_plan_quota_and_deleted_customer(history: History) -> None:
    before = audit_json(history, "--at", "2026-02-14")
    after = audit_json(history, "--at", "2026-02-15")
    assert [(c["id"], c["effective_quota"]) for c in before["customers"]] == [
        ("acme", 12000),
        ("initech", 1000),
        ("umbrella-health", 15000),
    ]
    assert [(c["id"], c["effective_quota"]) for c in after["customers"]] == [
        ("acme", 12000),
        ("umbrella-health", 15000),
    ]
    assert after["policies"]["plan"]["starter"]["daily_quota"] == 1500
    assert after["commit"]["title"] == "Remove initech"


def test_at_text(history: History) -> None:
    result = run(history, "--at", "2026-02-01", "--customer", "acme")
    assert result.exit_code == 0, result.output
    check_golden("at-acme.txt", normalise(history, result.output))
    result = run(history, "--at", "2026-02-21", "--markdown")
    assert result.exit_code == 0, result.output
    check_golden("at-all.md", normalise(history, result.output))


def test_at_unknown_customer_and_before_history(history: History) -> None:
    result = run(history, "--at", "2026-02-16", "--customer", "initech")
    assert result.exit_code == 2
    assert result.output.startswith(
        "relayops audit: customer 'initech' did not exist at 2026-02-16 (commit "
    )
    result = run(history, "--at", "2026-01-04")
    assert result.exit_code == 2
    assert result.output == (
        "relayops audit: no commit on the first-parent history of HEAD at or before 2026-01-04\n"
    )
    assert run(history, "--at", "2026-01-05", "--customer", "acme").exit_code == 0
    result = run(history, "--at", "2026-02-21", "--customer", "typo")
    assert result.exit_code == 2
    assert re.fullmatch(
        r"relayops audit: customers/typo.yaml did not parse at 2026-02-21 \(commit [0-9a-f]{10}\): "
        r"line 2 column 1: YAML syntax error: did not find expected ',' or '\]'\n",
        result.output,
    )
    # early dates are not misread by git as something recent
    for early in ("0001-01-01", "1969-12-31", "1970-01-02", "2026-01-05T08:59:59Z"):
        assert run(history, "--at", early).exit_code == 2, early


# --- signatures -------------------------------------------------------------------------


def test_allowed_signers_option_when_the_repo_config_has_none(tmp_path: Path) -> None:
    plain = build(tmp_path, signers_in_config=False)
    without = audit_json(plain, "--until", QUOTA_RAISED_AT, "--since", QUOTA_RAISED_AT)
    assert without["commits"][0]["signature"] == "bad"
    with_option = audit_json(
        plain, "--allowed-signers", str(plain.allowed_signers), "--since", "2026-02-01"
    )
    assert [(c["title"], c["signature"]) for c in with_option["commits"]] == [
        ("Add typo customer", "bad"),
        ("Remove initech", "unsigned"),
        ("Raise acme quota (#13)", "good"),
    ]


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "yesterday"],
            "bad date 'yesterday' for --since: expected YYYY-MM-DD or an ISO 8601 time",
        ),
        (
            ["--until", "2026-02-30"],
            "bad date '2026-02-30' for --until: expected YYYY-MM-DD or an ISO 8601 time",
        ),
        (["--at", "soon"], "bad date 'soon' for --at: expected YYYY-MM-DD or an ISO 8601 time"),
        (
            ["--since", "2026-02-02", "--until", "2026-02-01"],
            "--since 2026-02-02 is after --until 2026-02-01",
        ),
        (["--json", "--markdown"], "give --json or --markdown, not both"),
        (
            ["--at", "2026-02-01", "--field", "plan"],
            "--at shows one moment: it does not combine with --since, --until or --field",
        ),
    ],
)
def test_bad_input_exit_two(history: History, args: list[str], message: str) -> None:
    result = run(history, *args)
    assert result.exit_code == 2
    assert result.output == f"relayops audit: {message}\n"


def test_not_a_git_repository(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--repo", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith(f"relayops audit: {tmp_path} is not a git repository (")


def test_missing_directory_and_empty_repository(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--repo", str(tmp_path / "nowhere")])
    assert (result.exit_code, result.output) == (
        2,
        f"relayops audit: {tmp_path / 'nowhere'} is not a directory\n",
    )
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = CliRunner().invoke(cli, ["audit", "--repo", str(tmp_path)])
    assert (result.exit_code, result.output) == (
        2,
        f"relayops audit: {tmp_path} has no commits yet\n",
    )


def test_configured_signers_file_missing(tmp_path: Path) -> None:
    import subprocess

    plain = build(tmp_path, signers_in_config=False)
    subprocess.run(
        ["git", "-C", str(plain.repo), "config", "gpg.ssh.allowedSignersFile", "gone"], check=True
    )
    result = run(plain)
    assert (result.exit_code, result.output) == (
        2,
        "relayops audit: gpg.ssh.allowedSignersFile gone does not exist: "
        "SSH signatures cannot be checked\n",
    )


def test_policy_repository_in_a_subfolder(tmp_path: Path) -> None:
    """`--repo ops` inside a larger Git repository: paths read relative to ops/."""
    import shutil
    import subprocess

    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "A",
        "GIT_AUTHOR_EMAIL": "a@x.example",
        "GIT_COMMITTER_NAME": "A",
        "GIT_COMMITTER_EMAIL": "a@x.example",
        "GIT_AUTHOR_DATE": "2026-03-01T10:00:00Z",
        "GIT_COMMITTER_DATE": "2026-03-01T10:00:00Z",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, env=env)

    git("init", "-q")
    (tmp_path / "ops" / "customers").mkdir(parents=True)
    (tmp_path / "customers").mkdir()
    acme = tmp_path / "ops" / "customers" / "acme.yaml"
    shutil.copy(Path(__file__).parents[2] / "customers" / "acme.yaml", acme)
    (tmp_path / "customers" / "outside.yaml").write_text("name: not audited\n")
    git("add", "-A")
    git("commit", "-qm", "Add acme")
    acme.write_text(acme.read_text().replace("timezone: Europe/Paris", "timezone: UTC"))
    (tmp_path / "customers" / "outside.yaml").write_text("name: still not audited\n")
    git("commit", "-qam", "Acme to UTC (#4)")
    result = CliRunner().invoke(
        cli, ["audit", "--repo", str(tmp_path / "ops"), "--json", "--since", "2026-03-01"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert [(c["title"], len(c["changes"])) for c in payload["commits"]] == [
        ("Acme to UTC (#4)", 1),
        ("Add acme", 9),
    ]
    change = payload["commits"][0]["changes"][0]
    assert (change["file"], change["path"], change["old"], change["new"]) == (
        "customers/acme.yaml",
        "timezone",
        "Europe/Paris",
        "UTC",
    )
    result = CliRunner().invoke(
        cli, ["audit", "--repo", str(tmp_path / "ops"), "--at", "2026-03-01", "--json"]
    )
    assert [c["id"] for c in json.loads(result.output)["customers"]] == ["acme"]


def test_gpg_signature_good_with_the_key_bad_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPG-signed commit: good with the signer's key in GNUPGHOME, bad without it."""
    import subprocess

    keyring, empty, repo = tmp_path / "gnupg", tmp_path / "empty", tmp_path / "repo"
    for home in (keyring, empty):
        home.mkdir(mode=0o700)
    env = {
        **os.environ,
        "GNUPGHOME": str(keyring),
        "GIT_AUTHOR_NAME": "Frank",
        "GIT_AUTHOR_EMAIL": "frank@relay.example.net",
        "GIT_COMMITTER_NAME": "Frank",
        "GIT_COMMITTER_EMAIL": "frank@relay.example.net",
    }
    try:
        subprocess.run(
            [
                "gpg",
                "--batch",
                "--quiet",
                "--passphrase",
                "",
                "--quick-gen-key",
                "Frank <frank@relay.example.net>",
                "ed25519",
                "sign",
                "never",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        (repo / "customers").mkdir(parents=True)
        shutil.copy(Path(__file__).parents[2] / "customers" / "initech.yaml", repo / "customers")
        for args in (
            ["init", "-q"],
            ["add", "-A"],
            [
                "-c",
                "user.signingkey=frank@relay.example.net",
                "commit",
                "-qS",
                "-m",
                "Add initech (#21)",
            ],
        ):
            subprocess.run(["git", "-C", str(repo), *args], env=env, check=True)
        monkeypatch.setenv("GNUPGHOME", str(keyring))
        commit = audit_json(History(repo, tmp_path, tmp_path, tmp_path))["commits"][0]
        assert (commit["signature"], commit["signer"], commit["pr"]) == (
            "good",
            "Frank <frank@relay.example.net>",
            21,
        )
        monkeypatch.setenv("GNUPGHOME", str(empty))
        commit = audit_json(History(repo, tmp_path, tmp_path, tmp_path))["commits"][0]
        assert (commit["signature"], commit["signature_detail"]) == (
            "bad",
            "cannot be checked (missing key or allowed signers)",
        )
    finally:
        for home in (keyring, empty):
            subprocess.run(
                ["gpgconf", "--kill", "gpg-agent"], env={**env, "GNUPGHOME": str(home)}, check=False
            )
