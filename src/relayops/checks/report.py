"""Present results: a rich table per group (host, customer, service), failing groups and
failing checks first; or JSON for machines."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from relayops.checks.result import CheckResult, Status, worst

_STYLE = {Status.ERROR: "bold red", Status.WARNING: "yellow", Status.OK: "green"}


def grouped(results: list[CheckResult]) -> list[tuple[str, list[CheckResult]]]:
    """Groups ordered worst first (then by name); within a group, worst checks first."""
    groups: dict[str, list[CheckResult]] = {}
    for result in results:
        groups.setdefault(result.group, []).append(result)
    ordered = sorted(groups.items(), key=lambda kv: (worst(kv[1]).rank, kv[0]))
    return [(name, sorted(items, key=lambda r: r.status.rank)) for name, items in ordered]


def summary(results: list[CheckResult]) -> dict[str, int]:
    counts = Counter(r.status.value for r in results)
    return {s.value: counts.get(s.value, 0) for s in Status}


def to_json(results: list[CheckResult]) -> dict[str, Any]:
    return {
        "ok": worst(results) is not Status.ERROR,
        "summary": summary(results),
        "groups": [
            {"group": name, "status": worst(items).value, "results": [r.to_json() for r in items]}
            for name, items in grouped(results)
        ],
    }


def render(results: list[CheckResult], console: Console) -> None:
    for name, items in grouped(results):
        table = Table(title=f"{name} — {worst(items).value}", title_justify="left", expand=True)
        table.add_column("status", no_wrap=True)
        table.add_column("check", no_wrap=True)
        # Both wrap on a narrow terminal; a long host name folds rather than being cut.
        table.add_column("subject", ratio=2, overflow="fold")
        table.add_column("what was seen / what to do", ratio=3)
        for r in items:
            table.add_row(f"[{_STYLE[r.status]}]{r.status.value}[/]", r.check, r.subject, r.message)
        console.print(table)
    counts = summary(results)
    console.print(
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['ok']} ok",
        style=_STYLE[worst(results)],
    )
