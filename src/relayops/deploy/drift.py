"""`relayops drift`: do the hosts still run exactly what the repository compiles to?

A dry deploy (pyinfra `--dry`: the same state reads, nothing changed) lists every
operation the deploy would execute; any such operation is drift: a file, map or
directory that differs, or a service that is not running. Runtime state — quota
counters, complaint flags, suppressions, back-off pauses — lives in the store, not in
files, so it is never drift.
"""

from __future__ import annotations

from pathlib import Path

import click

from relayops.commands.options import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    emit_json,
    fail,
    inventory_option,
    inventory_path,
    json_option,
    repo_option,
)
from relayops.deploy.errors import DeployError
from relayops.deploy.report import detected_changes
from relayops.deploy.runner import run_deploy


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@inventory_option
@json_option
def drift(repo: Path, inventory: str, as_json: bool) -> None:
    """Compare every host with the repository; change nothing.

    Exit codes: 0 no drift, 1 drift found (hosts and what differs are named),
    2 invalid repository or usage.
    """
    inventory_file = inventory_path(repo, inventory)
    if not inventory_file.is_file():
        fail(f"no inventory {inventory_file}")
    try:
        result = run_deploy(inventory_file, repo=repo, dry=True, capture=True)
    except DeployError as exc:
        fail(str(exc))
    if result.returncode != 0:
        fail(f"the dry run failed (pyinfra exit {result.returncode}):\n{result.output[-3000:]}",
             code=EXIT_FAILED)  # fmt: skip
    changes = detected_changes(result.output, [h.name for h in result.target.inventory.hosts])
    if as_json:
        emit_json({"ok": not changes, "inventory": str(inventory_file), "drift": changes})
    elif changes:
        for host in sorted(changes):
            click.echo(f"{host}: drift")
            for operation in changes[host]:
                click.echo(f"  - {operation}")
    else:
        click.echo(f"no drift: every host of {inventory_file} is as the repository compiles")
    raise SystemExit(EXIT_FAILED if changes else EXIT_OK)
