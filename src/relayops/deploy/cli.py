"""`relayops deploy`: validate the repository, then run the pyinfra deploy on its hosts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from relayops.commands.options import json_option
from relayops.deploy.canary import stages
from relayops.deploy.errors import DeployError
from relayops.deploy.report import summary
from relayops.deploy.runner import DeployResult, run_deploy, validate


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
@click.option(
    "--canary",
    metavar="HOST",
    default=None,
    help="Deploy HOST alone first, then the other hosts; stop if the canary fails.",
)
@json_option
def deploy(
    inventory_file: Path, dry: bool, limit: tuple[str, ...], canary: str | None, as_json: bool
) -> None:
    """Deploy the compiled files to the relay hosts: upload, index maps, check, reload.

    Refuses (exit 2) when the repository does not validate, so nothing is half-deployed.
    """
    try:
        hosts = [h.name for h in validate(inventory_file).inventory.hosts] if canary else []
        plan = stages(hosts, canary=canary, limit=limit) if canary else [limit]
        results: list[tuple[tuple[str, ...], DeployResult]] = []
        for hosts_of_stage in plan:
            result = run_deploy(inventory_file, dry=dry, limit=hosts_of_stage, capture=as_json)
            results.append((hosts_of_stage, result))
            if result.returncode != 0:
                break  # the canary (or a stage) failed: leave the other hosts alone
    except DeployError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(exc)}, indent=2))
        else:
            click.echo(f"relayops deploy: {exc}", err=True)
        sys.exit(2)
    ok = all(r.returncode == 0 for _, r in results) and len(results) == len(plan)
    if as_json:
        payload: dict[str, Any] = {"ok": ok, "inventory": str(inventory_file), "dry": dry}
        if canary is None:
            payload |= _stage_json(results[0][1])
        else:
            payload["canary"] = canary
            payload["stages"] = [
                {"hosts": list(h), **_stage_json(r), "ok": r.returncode == 0} for h, r in results
            ]
            payload["skipped"] = [list(h) for h in plan[len(results) :]]
        click.echo(json.dumps(payload, indent=2))
        sys.exit(0 if ok else 1)
    verb = "dry run" if dry else "deploy"
    for hosts_of_stage, result in results:
        status = "ok" if result.returncode == 0 else f"FAILED (pyinfra exit {result.returncode})"
        which = f" ({', '.join(hosts_of_stage)})" if canary else ""
        click.echo(
            f"relayops {verb} of {inventory_file}{which}: {status} in {result.seconds:.1f} s",
            err=True,
        )
    for skipped in plan[len(results) :]:
        click.echo(f"relayops {verb}: not started on {', '.join(skipped)}", err=True)
    sys.exit(0 if ok else 1)


def _stage_json(result: DeployResult) -> dict[str, Any]:
    data: dict[str, Any] = {"seconds": result.seconds, **summary(result.output)}
    if result.returncode != 0:
        data["output_tail"] = result.output[-4000:]
    return data
