"""The contract of docs/policy-json.md, end to end: what the compiler writes, the daemon reads."""

from __future__ import annotations

import shlex
from pathlib import Path

from click.testing import CliRunner

from relayops.cli import cli
from relayops.policyd.cli import policyd
from relayops.policyd.rules import load_rules


def test_rendered_policy_json_loads_and_rendered_arguments_parse(
    example_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["render", "--repo", str(example_repo), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rendered = sorted(out.glob("*/etc/relayops/policy.json"))
    assert rendered, "no policy.json rendered"
    for path in rendered:
        rules = load_rules(path)
        assert rules.customers and rules.by_login
        for login, customer in rules.by_login.items():
            assert login == login.lower() and customer.id in rules.customers
        defaults = path.parent.parent / "default" / "relayops-policyd"
        (value,) = shlex.split(defaults.read_text().split("RELAYOPS_POLICYD_ARGS=", 1)[1])
        args = shlex.split(value)  # the shell variable, then the words the script passes
        # The rendered arguments are options the command knows (parsed, not run).
        ctx = policyd.make_context("policyd", args)
        assert ctx.params["listen"] and ctx.params["store_spec"] and ctx.params["rules_path"]
