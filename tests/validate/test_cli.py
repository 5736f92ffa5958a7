"""`relayops validate` and `relayops schemas` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from relayops.cli import cli
from relayops.commands.schemas import render_schemas

ROOT = Path(__file__).resolve().parents[2]


def test_valid_repository_exits_zero(example_repo: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--repo", str(example_repo)])
    assert result.exit_code == 0, result.output
    assert "valid:" in result.output


def test_all_errors_reported_at_once_as_json(example_repo: Path) -> None:
    (example_repo / "customers" / "a.yaml").write_text("name: [\n")
    (example_repo / "customers" / "b.yaml").write_text("- 1\n")
    acme = example_repo / "customers" / "acme.yaml"
    acme.write_text(acme.read_text().replace("plan: business", "plan: gold"))
    result = CliRunner().invoke(cli, ["validate", "--repo", str(example_repo), "--json"])
    assert result.exit_code == 2
    payload = json.loads(result.output)
    assert payload["valid"] is False
    files = sorted({e["file"] for e in payload["errors"]})
    assert files == ["customers/a.yaml", "customers/acme.yaml", "customers/b.yaml"]
    gold = next(e for e in payload["errors"] if e["file"] == "customers/acme.yaml")
    assert (gold["line"], gold["column"], gold["field"], gold["value"]) == (5, 1, "plan", "'gold'")


def test_table_output_on_stderr_and_exit_two(example_repo: Path) -> None:
    (example_repo / "customers" / "x.yaml").write_bytes(b"\xff\xfe\x00binary")
    proc = subprocess.run(
        [sys.executable, "-m", "relayops", "validate", "--repo", str(example_repo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "customers/x.yaml:1:1" in proc.stderr


def test_committed_schemas_are_fresh() -> None:
    for name, content in render_schemas().items():
        path = ROOT / "schemas" / name
        assert path.exists(), f"schemas/{name} is missing, run `relayops schemas`"
        assert path.read_text() == content, f"schemas/{name} is stale, run `relayops schemas`"


def test_example_files_name_their_schema() -> None:
    for path in sorted((ROOT / "customers").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/customer.schema.json", path
