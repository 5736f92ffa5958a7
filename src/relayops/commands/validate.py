"""`relayops validate`: every problem in the repository, at once, with its location."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from relayops.commands.options import EXIT_INVALID, EXIT_OK, emit_json, json_option, repo_option
from relayops.commands.repo import findings_json, print_findings
from relayops.loader import load_repo


@click.command()
@repo_option
@json_option
def validate(repo: Path, as_json: bool) -> None:
    """Check every file and cross-file rule of the repository.

    Exit codes: 0 valid, 2 invalid (every error listed, with file:line:column).
    """
    result = load_repo(repo)
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "valid": result.ok,
                "files": result.files,
                "errors": findings_json(result.findings),
            }
        )
    elif result.ok:
        click.echo(f"valid: {result.files} files checked in {repo}")
    else:
        print_findings(result.findings)
    sys.exit(EXIT_OK if result.ok else EXIT_INVALID)
