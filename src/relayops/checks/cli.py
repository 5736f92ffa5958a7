"""`relayops check`: exit 0 when every check passes (warnings allowed), 1 when one fails,
2 on bad usage or unusable targets."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console

from relayops.checks.engine import MECHANISMS, parse_only, run_checks
from relayops.checks.report import render, to_json
from relayops.checks.resolver import make_resolver
from relayops.checks.result import CheckInputError, Status, worst
from relayops.checks.target import CheckTarget, load_targets
from relayops.commands.options import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INVALID,
    emit_json,
    fail,
    inventory_option,
    json_option,
    repo_option,
)
from relayops.commands.progress import progress_wanted, steps


def _from_repo(
    repo_root: Path,
    inventory: str,
    credentials: Path | None,
    ca_bundle: str | None,
    nameserver: str | None,
    *,
    needs_ca: bool,
    as_json: bool,
) -> tuple[CheckTarget, str | None]:
    """The targets of one of the repository's inventories, and the DNS server to ask.

    Options not given on the command line come from the inventory (`relayops_ca_bundle`,
    `relayops_check_nameserver`: the lab names its CA and DNS). The CA bundle must exist
    only when TLS is checked: DNS checks need no deploy."""
    # Imported here: the repository loader is only needed for this form.
    from relayops.checks.from_repo import check_defaults, read_credentials, targets_from_repo
    from relayops.commands.repo import inventory_of, load_valid_repo

    repo = load_valid_repo(repo_root, as_json=as_json)
    chosen = inventory_of(repo, inventory)
    defaults = check_defaults(chosen, repo.root)
    if ca_bundle is None and defaults.ca_bundle is not None and needs_ca:
        if not defaults.ca_bundle.is_file():
            raise CheckInputError(
                f"inventory {chosen.name} names relayops_ca_bundle {defaults.ca_bundle}, which "
                f"does not exist; deploy first (`relayops deploy --inventory {chosen.name}` "
                "creates the lab CA) or pass --ca-bundle"
            )
        ca_bundle = str(defaults.ca_bundle)
    target = targets_from_repo(
        repo,
        chosen,
        credentials=read_credentials(credentials) if credentials else None,
        ca_bundle=ca_bundle,
    )
    return target, nameserver or defaults.nameserver


@click.command("check", epilog=EXIT_CODES_HELP)
@repo_option
@inventory_option
@click.option(
    "--targets",
    "targets_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Check the hosts and domains of this JSON targets file instead of an inventory.",
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
@json_option
def check(
    repo: Path,
    inventory: str,
    targets_file: Path | None,
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
        if targets_file is not None:
            target = load_targets(targets_file)
        else:
            target, nameserver = _from_repo(
                repo,
                inventory,
                credentials,
                ca_bundle,
                nameserver,
                needs_ca="tls" in mechanisms,
                as_json=as_json,
            )
        if customer:
            target = target.for_customer(customer)
        if ca_bundle:
            target = replace(target, ca_bundle=ca_bundle)
        resolver = make_resolver(nameserver, timeout=min(timeout, 5.0))
        with steps("checking", len(mechanisms), enabled=progress_wanted(as_json=as_json)) as step:
            results = run_checks(
                target,
                only=mechanisms,
                resolver=resolver,
                now=dt.datetime.now(dt.UTC),
                timeout=timeout,
                workers=workers,
                on_group=step,
            )
    except CheckInputError as exc:
        fail(str(exc), code=EXIT_INVALID)
    if not results:  # a check that looked at nothing must not read as a pass
        fail(
            "nothing to check: the targets have no host or domain for "
            f"--only {','.join(mechanisms)}"
        )
    if as_json:
        emit_json(to_json(results))
    else:
        render(results, Console())
    if worst(results) is Status.ERROR:
        raise SystemExit(EXIT_FAILED)
