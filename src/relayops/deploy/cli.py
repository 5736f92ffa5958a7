"""`relayops deploy`: validate the repository, then run the pyinfra deploy on its hosts."""

from __future__ import annotations

import sys
from pathlib import Path

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
from relayops.deploy.errors import DeployError, InvalidRepository
from relayops.deploy.report import progress_line, summary
from relayops.deploy.runner import run_deploy


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@inventory_option
@click.option(
    "--dry", is_flag=True, help="Show what would change (pyinfra's diff); change nothing."
)
@click.option("--limit", multiple=True, help="Deploy only this host (repeatable).")
@json_option
def deploy(repo: Path, inventory: str, dry: bool, limit: tuple[str, ...], as_json: bool) -> None:
    """Deploy the compiled files to the relay hosts: upload, index maps, check, reload.

    Refuses (exit 2) when the repository does not validate, so nothing is half-deployed;
    exit 1 when pyinfra fails on a host.
    """
    inventory_file = inventory_path(repo, inventory)
    progress = progress_wanted(as_json=as_json)
    try:
        with steps("deploy", None, enabled=progress) as step:
            on_line = None
            if progress:

                def on_line(line: str) -> None:
                    shown = progress_line(line)
                    if shown:
                        step(shown)

            result = run_deploy(
                inventory_file,
                repo=repo,
                dry=dry,
                limit=limit,
                capture=as_json or progress,
                on_line=on_line,
            )
    except InvalidRepository as exc:
        refuse_invalid(exc.root, exc.findings, as_json=as_json)
    except DeployError as exc:
        if as_json:
            emit_json({"ok": False, "error": str(exc)})
            sys.exit(EXIT_INVALID)
        fail(str(exc))
    ok = result.returncode == 0
    if as_json:
        payload = {
            "ok": ok,
            "inventory": str(inventory_file),
            "dry": dry,
            "seconds": result.seconds,
            **summary(result.output),
        }
        if not ok:
            payload["output_tail"] = result.output[-4000:]
        emit_json(payload)
        sys.exit(EXIT_OK if ok else EXIT_FAILED)
    if progress:  # pyinfra's own lines were the progress: show what it concluded
        marker = "--> Results:"
        text = result.output
        click.echo(text[text.index(marker) :] if marker in text else text[-4000:], err=True)
    verb = "dry run" if dry else "deploy"
    status = "ok" if ok else f"FAILED (pyinfra exit {result.returncode})"
    click.echo(f"relayops {verb} of {inventory_file}: {status} in {result.seconds:.1f} s", err=True)
    sys.exit(EXIT_OK if ok else EXIT_FAILED)
