"""`relayops summary`: what the repository says, for a person to read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from relayops.commands.options import EXIT_CODES_HELP, emit_json, json_option, repo_option
from relayops.commands.repo import load_valid_repo
from relayops.model import Repo


def summarize(repo: Repo) -> dict[str, Any]:
    customers = []
    for cid in sorted(repo.customers):
        c = repo.customers[cid]
        customers.append(
            {
                "id": cid,
                "name": c.name,
                "status": c.status.value,
                "plan": c.plan,
                "daily_quota": repo.effective_quota(c),
                "timezone": c.timezone,
                "placement": c.placement.pool or f"dedicated {c.placement.dedicated_ip}",
                "warmup": f"{c.warmup.schedule} from {c.warmup.start}" if c.warmup else None,
                "domains": [d.name for d in c.domains],
                "logins": [u.login for u in c.users],
            }
        )
    inventories = {
        name: [
            {"host": h.name, "ips": [f"{ip.address} ({ip.name})" for ip in h.ips]}
            for h in inv.hosts
        ]
        for name, inv in sorted(repo.inventories.items())
    }
    return {
        "ok": True,
        "service": repo.service.domain,
        "customers": customers,
        "inventories": inventories,
    }


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@json_option
def summary(repo: Path, as_json: bool) -> None:
    """Print the customers, plans and relay hosts of a valid repository."""
    data = summarize(load_valid_repo(repo, as_json=as_json))
    if as_json:
        emit_json(data)
        return
    console = Console(width=None if Console().is_terminal else 160)
    table = Table(title=f"{len(data['customers'])} customers of {data['service']}")
    for column in (
        "customer",
        "status",
        "plan",
        "quota/day",
        "day in",
        "sends from",
        "domains",
        "logins",
    ):
        table.add_column(column)
    for c in data["customers"]:
        table.add_row(
            c["id"],
            c["status"],
            c["plan"],
            str(c["daily_quota"]),
            c["timezone"],
            c["placement"] + (f"\nwarm-up {c['warmup']}" if c["warmup"] else ""),
            "\n".join(c["domains"]),
            "\n".join(c["logins"]),
        )
    console.print(table)
    for name, hosts in data["inventories"].items():
        hosts_table = Table(title=f"inventory/{name}.py")
        hosts_table.add_column("relay host")
        hosts_table.add_column("sending IPs")
        for h in hosts:
            hosts_table.add_row(h["host"], "\n".join(h["ips"]))
        console.print(hosts_table)
