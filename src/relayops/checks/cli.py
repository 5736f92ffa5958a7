"""`relayops check`: exit 0 when every check passes (warnings allowed), 1 when one fails,
2 on bad usage or unusable targets."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console

from relayops.checks.engine import MECHANISMS, parse_only, run_checks
from relayops.checks.report import render, to_json
from relayops.checks.resolver import make_resolver
from relayops.checks.result import CheckInputError, Status, worst
from relayops.checks.target import CheckTarget, load_targets


class _BadInput(click.ClickException):
    exit_code = 2


def _repo_root(inventory: Path, repo_root: Path | None) -> Path:
    return repo_root or inventory.resolve().parent.parent


def _targets(
    inventory: Path, repo_root: Path | None, credentials: Path | None, ca_bundle: str | None
) -> CheckTarget:
    """A JSON targets file as is; a pyinfra inventory (inventory/lab.py) through the
    repository loader, with the repository root defaulting to the inventory's parent's."""
    if inventory.suffix == ".json":
        return load_targets(inventory)
    # Imported here: the repository loader is only needed for this form.
    from relayops.checks.from_repo import read_credentials, targets_from_repo
    from relayops.loader import load_repo

    root = _repo_root(inventory, repo_root)
    loaded = load_repo(root)
    if loaded.repo is None:
        first = "; ".join(f"{f.location()}: {f.message}" for f in loaded.findings[:3])
        raise CheckInputError(
            f"the repository at {root} does not validate ({len(loaded.findings)} problem(s): "
            f"{first}); run `relayops validate` and fix it first"
        )
    return targets_from_repo(
        loaded.repo,
        inventory.stem,
        credentials=read_credentials(credentials) if credentials else None,
        ca_bundle=ca_bundle,
    )


def _with_inventory_defaults(
    inventory: Path,
    repo_root: Path | None,
    ca_bundle: str | None,
    nameserver: str | None,
    *,
    needs_ca: bool,
) -> tuple[str | None, str | None]:
    """Options not given on the command line come from the inventory's group data
    (`relayops_ca_bundle`, `relayops_check_nameserver`: the lab names its CA and DNS).

    The CA bundle must exist only when TLS is checked: DNS checks need no deploy."""
    if inventory.suffix == ".json" or (ca_bundle and nameserver):
        return ca_bundle, nameserver
    from relayops.checks.from_repo import inventory_check_defaults

    defaults = inventory_check_defaults(inventory, _repo_root(inventory, repo_root))
    if ca_bundle is None and defaults.ca_bundle is not None and needs_ca:
        if not defaults.ca_bundle.is_file():
            raise CheckInputError(
                f"{inventory} names relayops_ca_bundle {defaults.ca_bundle}, which does not "
                f"exist; deploy first (`relayops deploy --inventory {inventory}` creates the "
                "lab CA) or pass --ca-bundle"
            )
        ca_bundle = str(defaults.ca_bundle)
    return ca_bundle, nameserver or defaults.nameserver


@click.command("check")
@click.option(
    "--inventory",
    "inventory",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A pyinfra inventory of the repository (inventory/lab.py) or a JSON targets file.",
)
@click.option(
    "--repo",
    "repo_root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Repository root (default: the inventory's parent directory's parent).",
)
@click.option(
    "--credentials",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML login: password of test logins, to prove logins only send from their domains.",
)
@click.option("--customer", help="Only this customer's sender domains and logins.")
@click.option("--only", help=f"Comma-separated subset of {','.join(MECHANISMS)}.")
@click.option(
    "--nameserver",
    help="Ask only this DNS server, IP[:PORT] (default: the inventory's "
    "relayops_check_nameserver, else the system's).",
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM file of the CAs certificates must chain to (default: the inventory's "
    "relayops_ca_bundle, else the system store).",
)
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per probe.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Probes run at once (public blocklists rate-limit: keep it modest).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def check(
    inventory: Path,
    repo_root: Path | None,
    credentials: Path | None,
    customer: str | None,
    only: str | None,
    nameserver: str | None,
    ca_bundle: str | None,
    timeout: float,
    workers: int,
    as_json: bool,
) -> None:
    """Prove the service from outside: DNS, TLS, ports, open relay, blocklists."""
    try:
        mechanisms = parse_only(only)
        ca_bundle, nameserver = _with_inventory_defaults(
            inventory, repo_root, ca_bundle, nameserver, needs_ca="tls" in mechanisms
        )
        target = _targets(inventory, repo_root, credentials, ca_bundle)
        if customer:
            target = target.for_customer(customer)
        if ca_bundle:
            target = replace(target, ca_bundle=ca_bundle)
        resolver = make_resolver(nameserver, timeout=min(timeout, 5.0))
        results = run_checks(
            target,
            only=mechanisms,
            resolver=resolver,
            now=dt.datetime.now(dt.UTC),
            timeout=timeout,
            workers=workers,
        )
    except CheckInputError as exc:
        raise _BadInput(str(exc)) from exc
    if not results:  # a check that looked at nothing must not read as a pass
        raise _BadInput(
            "nothing to check: the targets have no host or domain for "
            f"--only {','.join(mechanisms)}"
        )
    if as_json:
        click.echo(json.dumps(to_json(results), indent=2))
    else:
        render(results, Console())
    if worst(results) is Status.ERROR:
        raise SystemExit(1)
