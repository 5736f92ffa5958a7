"""`relayops lab up|down|status`: the lab on this machine (root, Linux)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

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
_json = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


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
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log every command the lab runs.")
def lab(verbose: bool) -> None:
    """The lab: relay, DNS and destination hosts in network namespaces on this machine."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )


@lab.command()
@click.option(
    "--relays", type=click.IntRange(1, MAX_RELAYS), default=2, show_default=True,
    help="Number of relay hosts.",
)  # fmt: skip
@_index
@_json
def up(relays: int, index: int, as_json: bool) -> None:
    """Bring the lab up (a healthy lab of the same shape is kept as it is)."""
    try:
        result = lifecycle.up(relays=relays, index=index)
    except LabError as exc:
        _fail(exc)
        return
    topo = result.topology
    if as_json:
        payload = {
            "reused": result.reused,
            "seconds": result.total,
            "timings": result.timings,
            "gateway": topo.gateway,
            "ssh_key": str(topo.ssh_key),
            "known_hosts": str(topo.known_hosts),
            "hosts": _hosts_json(topo),
        }
        click.echo(json.dumps(payload, indent=2))
        return
    verb = "already up" if result.reused else "up"
    click.echo(f"lab {verb} in {result.total:.1f} s ({result.timings})")
    for h in topo.hosts:
        click.echo(f"  {h.fqdn:28} {', '.join(h.addresses)}")
    click.echo(f"ssh -i {topo.ssh_key} -o UserKnownHostsFile={topo.known_hosts} root@<address>")


@lab.command()
@_index
@_json
@click.option("--force", is_flag=True, help="Take the lab down even while test sessions use it.")
def down(index: int, as_json: bool, force: bool) -> None:
    """Stop every lab process and remove its namespaces, mounts, bridge and files."""
    if not force and _in_use_by_tests(index):
        click.echo(
            "error: a test session is using the lab (it holds /run/relayops-lab"
            f"{index}.users); wait for it or pass --force",
            err=True,
        )
        sys.exit(1)
    try:
        result = lifecycle.down(index=index)
    except LabError as exc:
        _fail(exc)
        return
    if as_json:
        payload = {
            "seconds": result.total,
            "namespaces": result.namespaces,
            "unmounted": result.unmounted,
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(
            f"lab down in {result.total:.1f} s: {len(result.namespaces)} namespaces, "
            f"{len(result.unmounted)} mounts removed"
        )


@lab.command()
@_index
@_json
def status(index: int, as_json: bool) -> None:
    """Hosts, addresses and whether sshd, nsd and postfix answer. Exit 1 if not up and healthy."""
    current, statuses = lifecycle.status(index=index)
    ok = current is not None and lifecycle.healthy(statuses)
    if as_json:
        payload: dict[str, Any] = {"up": current is not None, "healthy": ok}
        if current is None:
            payload["leftovers"] = lifecycle.stray(index=index)
        if current is not None:
            payload["relays"] = current.relays
            payload["image_key"] = current.image_key
            payload["hosts"] = [
                {**h, "services": s.services}
                for h, s in zip(_hosts_json(current.topology), statuses, strict=True)
            ]
        click.echo(json.dumps(payload, indent=2))
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
    sys.exit(0 if ok else 1)
