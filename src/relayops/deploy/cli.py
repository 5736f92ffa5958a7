"""`relayops deploy`: validate the repository, then run the pyinfra deploy on its hosts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from relayops.commands.options import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    emit_json,
    fail,
    inventory_option,
    inventory_path,
    json_option,
    repo_option,
)
from relayops.commands.progress import progress_wanted, steps
from relayops.commands.repo import refuse_invalid
from relayops.deploy.canary import stages
from relayops.deploy.errors import DeployError, InvalidRepository
from relayops.deploy.report import progress_line, summary
from relayops.deploy.runner import DeployResult, run_deploy, validate


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@inventory_option
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
    repo: Path,
    inventory: str,
    dry: bool,
    limit: tuple[str, ...],
    canary: str | None,
    as_json: bool,
) -> None:
    """Deploy the compiled files to the relay hosts: upload, index maps, check, reload.

    Refuses (exit 2) when the repository does not validate, so nothing is half-deployed;
    exit 1 when pyinfra fails on a host (with --canary, the other hosts are then left alone).
    """
    inventory_file = inventory_path(repo, inventory)
    progress = progress_wanted(as_json=as_json)
    results: list[tuple[tuple[str, ...], DeployResult]] = []
    plan: list[tuple[str, ...]] = [limit]
    try:
        target = validate(inventory_file, repo)  # compiled once; every stage deploys it
        if canary is not None:
            plan = stages([h.name for h in target.inventory.hosts], canary=canary, limit=limit)
        with steps("deploy", None, enabled=progress) as step:
            on_line = None
            if progress:

                def on_line(line: str) -> None:
                    shown = progress_line(line)
                    if shown:
                        step(shown)

            for hosts_of_stage in plan:
                result = run_deploy(
                    inventory_file,
                    repo=repo,
                    dry=dry,
                    limit=hosts_of_stage,
                    capture=as_json or progress,
                    on_line=on_line,
                    target=target,
                )
                results.append((hosts_of_stage, result))
                if result.returncode != 0:
                    break  # the canary (or a stage) failed: leave the other hosts alone
    except InvalidRepository as exc:
        refuse_invalid(exc.root, exc.findings, as_json=as_json)
    except DeployError as exc:
        if as_json:
            emit_json({"ok": False, "error": str(exc)})
            sys.exit(EXIT_INVALID)
        fail(str(exc))
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
        emit_json(payload)
        sys.exit(EXIT_OK if ok else EXIT_FAILED)
    verb = "dry run" if dry else "deploy"
    for hosts_of_stage, result in results:
        if progress:  # pyinfra's own lines were the progress: show what it concluded
            marker = "--> Results:"
            text = result.output
            click.echo(text[text.index(marker) :] if marker in text else text[-4000:], err=True)
        status = "ok" if result.returncode == 0 else f"FAILED (pyinfra exit {result.returncode})"
        which = f" ({', '.join(hosts_of_stage)})" if canary else ""
        click.echo(
            f"relayops {verb} of {inventory_file}{which}: {status} in {result.seconds:.1f} s",
            err=True,
        )
    for skipped in plan[len(results) :]:
        click.echo(f"relayops {verb}: not started on {', '.join(skipped)}", err=True)
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


def _stage_json(result: DeployResult) -> dict[str, Any]:
    data: dict[str, Any] = {"seconds": result.seconds, **summary(result.output)}
    if result.returncode != 0:
        data["output_tail"] = result.output[-4000:]
    return data
