"""The one command-line convention, checked on the whole command tree.

`--repo`, `--inventory` and `--json` are the options of relayops/commands/options.py
wherever they appear; every command reading the repository has `--repo`, every command
targeting hosts `--inventory`, every reporting command `--json` (with `ok` first);
every `--help` says what the exit codes mean; the README's table is `relayops --help`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from relayops.cli import cli
from relayops.commands.options import inventory_option, json_option, repo_option

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_EDITS = {
    f"customer {sub}"
    for sub in (
        "new", "add-domain", "remove-domain", "add-login", "remove-login", "set-quota",
        "suspend", "reinstate", "terminate", "swap-ip",
    )
}  # fmt: skip
REPO_COMMANDS = {
    "validate", "schemas", "summary", "render", "plan", "deploy", "demo", "check",
    "dkim generate", "dkim record", "dkim decrypt", "dkim rotate", "audit", "drift",
    "redis-passwords", "warmup status", "warmup advance", "feedback propose", "feedback keygen",
    *CUSTOMER_EDITS,
}  # fmt: skip
# add-domain and swap-ip print the DNS records to publish for an inventory's IPs.
HOST_COMMANDS = {
    "render", "plan", "deploy", "check", "drift", "customer add-domain", "customer swap-ip"
}  # fmt: skip
# Not reporting commands: the daemon runs until stopped; decrypt writes one file; the
# edits' report is the file they change (and the exit code), add-login's password aside.
NO_JSON = {
    "policyd", "dkim decrypt", "dkim rotate", "backoff watch", "backoff serve",
    *(CUSTOMER_EDITS - {"customer add-login"}),
}  # fmt: skip


def walk(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command of the tree, the lazy group expanded, groups included."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        full = f"{prefix}{name}"
        yield full, command
        if isinstance(command, click.Group):
            yield from walk(command, f"{full} ")


COMMANDS = dict(walk(cli))
LEAVES = {n: c for n, c in COMMANDS.items() if not isinstance(c, click.Group)}


def reference(decorator: Any) -> dict[str, Any]:
    """The option as options.py declares it."""

    @decorator
    def probe(**_kwargs: Any) -> None: ...

    command = click.command()(probe)
    info: dict[str, Any] = command.params[0].to_info_dict()
    return info


CONVENTION = {
    "--repo": reference(repo_option),
    "--inventory": reference(inventory_option),
    "--json": reference(json_option),
}


def options(command: click.Command) -> dict[str, dict[str, Any]]:
    return {
        opt: param.to_info_dict()
        for param in command.params
        if isinstance(param, click.Option)
        for opt in param.opts
    }


def test_the_tree_is_walked_whole() -> None:
    assert set(LEAVES) >= {
        "validate", "schemas", "summary", "render", "plan", "deploy", "demo", "check",
        "policyd", "lab up", "lab down", "lab status",
        "dkim generate", "dkim record", "dkim decrypt",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_convention_options_mean_the_same_everywhere(name: str) -> None:
    found = options(LEAVES[name])
    for opt, expected in CONVENTION.items():
        if opt in found:
            assert found[opt] == expected, f"{name} {opt} is not the convention's"
    assert ("--repo" in found) == (name in REPO_COMMANDS), name
    assert ("--inventory" in found) == (name in HOST_COMMANDS), name
    assert ("--json" in found) == (name not in NO_JSON), name
    for other in ("--format", "--inventory-file", "--repo-root"):
        assert other not in found, f"{name}: {other} is not part of the convention"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_says_what_exit_codes_mean(name: str) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Exit codes: 0 " in result.output, name


def test_top_level_help_says_what_exit_codes_mean() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "Exit codes: 0 ok, 1 a check failed, 2 invalid input or usage." in result.output


def test_readme_command_table_matches_help() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The command line") :]
    rows = re.findall(r"^\| `relayops (\S+)[^`]*` \| (.+) \|$", section, re.MULTILINE)
    ctx = click.Context(cli)
    top = {n: cli.get_command(ctx, n) for n in cli.list_commands(ctx)}
    assert [n for n, _ in rows] == sorted(top, key=[n for n, _ in rows].index)
    assert {n for n, _ in rows} == set(top)
    for name, what in rows:
        command = top[name]
        assert command is not None
        assert what == command.get_short_help_str(500), name


def test_a_usage_error_reads_like_every_other_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "--repo", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == "relayops render: Missing option '--out'."


def test_an_unknown_inventory_is_refused_the_same_way_by_every_host_command(
    example_repo: Path, tmp_path: Path
) -> None:
    for argv in (
        ["render", "--out", str(tmp_path / "out")],
        ["plan"],
        ["check"],
    ):
        result = CliRunner().invoke(
            cli, [argv[0], "--repo", str(example_repo), "--inventory", "staging", *argv[1:]]
        )
        assert result.exit_code == 2, argv
        assert result.output == (
            f"relayops {argv[0]}: no inventory 'staging' in {example_repo}; "
            "known: lab, production\n"
        )


def first_key(argv: list[str]) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, argv)
    payload: dict[str, Any] = json.loads(result.output)
    assert next(iter(payload)) == "ok", argv
    return result.exit_code, payload


def test_json_reports_put_ok_first(example_repo: Path, tmp_path: Path) -> None:
    repo = ["--repo", str(example_repo)]
    assert first_key(["validate", *repo, "--json"])[0] == 0
    assert first_key(["summary", *repo, "--json"])[0] == 0
    assert first_key(["schemas", *repo, "--check", "--json"]) == (
        0,
        {"ok": True, "stale": []},
    )
    code, rendered = first_key(["render", *repo, "--out", str(tmp_path / "o"), "--json"])
    assert (code, rendered["inventory"], len(rendered["hosts"])) == (0, "lab", 2)
    code, record = first_key(
        ["dkim", "record", "acme.example", "--selector", "rly2026", *repo, "--json"]
    )
    assert (code, record["name"]) == (0, "rly2026._domainkey.acme.example")


def test_an_invalid_repository_is_reported_the_same_way_by_every_command(
    example_repo: Path, tmp_path: Path
) -> None:
    (example_repo / "customers" / "acme.yaml").write_text("name: [unclosed\n")
    repo = ["--repo", str(example_repo)]
    for argv in (
        ["summary", *repo],
        ["render", *repo, "--out", str(tmp_path / "o")],
        ["plan", *repo],
        ["check", *repo],
        ["deploy", *repo],
    ):
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 2, argv
        assert "customers/acme.yaml:2:1" in result.output, argv
        assert result.output.rstrip().endswith(
            f"relayops {argv[0]}: {example_repo}: invalid repository (1 error(s) above); "
            "fix them first"
        ), argv
        code, payload = first_key([*argv, "--json"])
        assert code == 2 and payload["errors"][0]["file"] == "customers/acme.yaml", argv


def test_progress_only_on_a_terminal_and_never_with_json() -> None:
    from rich.console import Console

    from relayops.commands.progress import progress_wanted, steps

    terminal = Console(force_terminal=True)
    pipe = Console(force_terminal=False)
    assert progress_wanted(as_json=False, console=terminal) is True
    assert progress_wanted(as_json=True, console=terminal) is False
    assert progress_wanted(as_json=False, console=pipe) is False
    seen: list[str] = []
    with steps("deploy", None, enabled=False) as step:
        step("relay1")
        seen.append("ran")
    assert seen == ["ran"]
