"""`relayops validate`: every problem in the repository, at once, with its location."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from relayops.commands.options import json_option, repo_option
from relayops.diagnostics import Finding
from relayops.loader import load_repo


@click.command()
@repo_option
@json_option
def validate(repo: Path, as_json: bool) -> None:
    """Check every file of the repository; exit 0 when valid, 2 otherwise."""
    result = load_repo(repo)
    if as_json:
        payload = {
            "valid": result.ok,
            "files": result.files,
            "errors": [f.as_dict() for f in result.findings],
        }
        click.echo(json.dumps(payload, indent=2))
    elif result.ok:
        click.echo(f"valid: {result.files} files checked in {repo}")
    else:
        print_findings(result.findings)
    sys.exit(0 if result.ok else 2)


def print_findings(findings: list[Finding]) -> None:
    console = Console(stderr=True, soft_wrap=False, width=max(Console().width, 120))
    table = Table(title=f"{len(findings)} error(s)", show_lines=False, title_justify="left")
    table.add_column("location", no_wrap=True)
    table.add_column("field")
    table.add_column("problem")
    table.add_column("value")
    for f in findings:
        table.add_row(f.location(), f.field, f.message, f.value or "")
    console.print(table)
