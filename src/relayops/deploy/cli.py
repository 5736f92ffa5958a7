"""`relayops deploy`: validate the repository, then run the pyinfra deploy on its hosts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from relayops.commands.options import json_option
from relayops.deploy.errors import DeployError
from relayops.deploy.report import summary
from relayops.deploy.runner import run_deploy


@click.command()
@click.option(
    "--inventory",
    "inventory_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("inventory/lab.py"),
    show_default=True,
    help="pyinfra inventory file of the repository (inventory/lab.py or inventory/production.py).",
)
@click.option(
    "--dry", is_flag=True, help="Show what would change (pyinfra's diff); change nothing."
)
@click.option("--limit", multiple=True, help="Deploy only this host (repeatable).")
@json_option
def deploy(inventory_file: Path, dry: bool, limit: tuple[str, ...], as_json: bool) -> None:
    """Deploy the compiled files to the relay hosts: upload, index maps, check, reload.

    Refuses (exit 2) when the repository does not validate, so nothing is half-deployed.
    """
    try:
        result = run_deploy(inventory_file, dry=dry, limit=limit, capture=as_json)
    except DeployError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(exc)}, indent=2))
        else:
            click.echo(f"relayops deploy: {exc}", err=True)
        sys.exit(2)
    if as_json:
        payload = {
            "ok": result.returncode == 0,
            "inventory": str(inventory_file),
            "dry": dry,
            "seconds": result.seconds,
            **summary(result.output),
        }
        if result.returncode != 0:
            payload["output_tail"] = result.output[-4000:]
        click.echo(json.dumps(payload, indent=2))
        sys.exit(0 if result.returncode == 0 else 1)
    verb = "dry run" if dry else "deploy"
    status = "ok" if result.returncode == 0 else f"FAILED (pyinfra exit {result.returncode})"
    click.echo(f"relayops {verb} of {inventory_file}: {status} in {result.seconds:.1f} s", err=True)
    sys.exit(0 if result.returncode == 0 else 1)
