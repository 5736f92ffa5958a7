"""`relayops lab up|down|status`: the lab on this machine (root, Linux)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from relayops.commands.options import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    emit_json,
    fail,
    json_option,
)
from relayops.commands.progress import progress_wanted, steps
from relayops.lab import lifecycle
from relayops.lab.errors import LabError
from relayops.lab.topology import MAX_RELAYS, Topology

_index = click.option(
    "--index",
    type=click.IntRange(0, 1),
    default=0,
    show_default=True,
    help="Lab instance: 0 uses 198.18.0.0/24, 1 a throwaway lab in 198.18.1.0/24.",
)


def _hosts_json(topo: Topology) -> list[dict[str, Any]]:
    return [
        {
            "name": h.name,
            "fqdn": h.fqdn,
            "role": h.role,
            "address": h.address,
            "extra_addresses": list(h.extra_addresses),
            "netns": topo.netns(h),
            "root": str(topo.root(h)),
        }
        for h in topo.hosts
    ]


def _in_use_by_tests(index: int) -> bool:
    from relayops.lab.users import in_use_by_tests

    return in_use_by_tests(index)


def _fail(exc: LabError) -> None:
    """The lab could not do it (this machine's state, not the user's input): exit 1."""
    fail(str(exc), code=EXIT_FAILED)


@click.group(epilog=EXIT_CODES_HELP)
@click.option("-v", "--verbose", is_flag=True, help="Log every command the lab runs.")
def lab(verbose: bool) -> None:
    """The lab: relay, DNS and destination hosts in network namespaces on this machine."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )


@lab.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--relays", type=click.IntRange(1, MAX_RELAYS), default=2, show_default=True,
    help="Number of relay hosts.",
)  # fmt: skip
@_index
@json_option
def up(relays: int, index: int, as_json: bool) -> None:
    """Bring the lab up (a healthy lab of the same shape is kept as it is)."""
    try:
        with steps("lab up", None, enabled=progress_wanted(as_json=as_json)) as step:
            result = lifecycle.up(relays=relays, index=index, on_phase=step)
    except LabError as exc:
        _fail(exc)
        return
    topo = result.topology
    if as_json:
        payload = {
            "ok": True,
            "reused": result.reused,
            "seconds": result.total,
            "timings": result.timings,
            "gateway": topo.gateway,
            "ssh_key": str(topo.ssh_key),
            "known_hosts": str(topo.known_hosts),
            "hosts": _hosts_json(topo),
        }
        emit_json(payload)
        return
    verb = "already up" if result.reused else "up"
    click.echo(f"lab {verb} in {result.total:.1f} s ({result.timings})")
    for h in topo.hosts:
        click.echo(f"  {h.fqdn:28} {', '.join(h.addresses)}")
    click.echo(f"ssh -i {topo.ssh_key} -o UserKnownHostsFile={topo.known_hosts} root@<address>")


@lab.command(epilog=EXIT_CODES_HELP)
@_index
@json_option
@click.option("--force", is_flag=True, help="Take the lab down even while test sessions use it.")
def down(index: int, as_json: bool, force: bool) -> None:
    """Stop every lab process and remove its namespaces, mounts, bridge and files."""
    if not force and _in_use_by_tests(index):
        fail(
            f"a test session is using the lab (it holds /run/relayops-lab{index}.users); "
            "wait for it or pass --force",
            code=EXIT_FAILED,
        )
    try:
        result = lifecycle.down(index=index)
    except LabError as exc:
        _fail(exc)
        return
    if as_json:
        emit_json(
            {
                "ok": True,
                "seconds": result.total,
                "namespaces": result.namespaces,
                "unmounted": result.unmounted,
            }
        )
    else:
        click.echo(
            f"lab down in {result.total:.1f} s: {len(result.namespaces)} namespaces, "
            f"{len(result.unmounted)} mounts removed"
        )


@lab.command(epilog=EXIT_CODES_HELP)
@_index
@json_option
def status(index: int, as_json: bool) -> None:
    """Hosts, addresses and whether sshd, nsd and postfix answer. Exit 1 if not up and healthy."""
    current, statuses = lifecycle.status(index=index)
    ok = current is not None and lifecycle.healthy(statuses)
    if as_json:
        payload: dict[str, Any] = {"ok": ok, "up": current is not None, "healthy": ok}
        if current is None:
            payload["leftovers"] = lifecycle.stray(index=index)
        if current is not None:
            payload["relays"] = current.relays
            payload["image_key"] = current.image_key
            payload["hosts"] = [
                {**h, "services": s.services}
                for h, s in zip(_hosts_json(current.topology), statuses, strict=True)
            ]
        emit_json(payload)
    elif current is None:
        left = {k: v for k, v in lifecycle.stray(index=index).items() if v}
        if left:
            click.echo(f"lab is down, but an earlier lab left {left}: run `relayops lab down`")
        else:
            click.echo("lab is down")
    else:
        table = Table(title=f"lab {'healthy' if ok else 'NOT healthy'} ({current.relays} relays)")
        for column in ("host", "role", "addresses", "netns", "services"):
            table.add_column(column)
        for s in statuses:
            expected = lifecycle.expected_services(s.host)
            services = " ".join(
                f"{name}:{'up' if on else ('DOWN' if name in expected else 'off')}"
                for name, on in s.services.items()
            )
            table.add_row(s.host.fqdn, s.host.role, " ".join(s.host.addresses), s.netns, services)
        Console().print(table)
    sys.exit(EXIT_OK if ok else EXIT_FAILED)
