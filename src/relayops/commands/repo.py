"""Load the repository for a command: one way to refuse an invalid one, for every command.

Findings print as one table on stderr (or, with `--json`, as the report's `errors`),
then the command exits 2 — `validate`, `summary`, `render`, `plan`, `check`, `deploy`
and `dkim` all say it the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from relayops.commands.options import EXIT_INVALID, emit_json, fail, inventory_path
from relayops.compile.loading import load_frozen
from relayops.diagnostics import Finding
from relayops.model import Inventory, Repo


def print_findings(findings: list[Finding]) -> None:
    """The findings as one table on stderr: location, field, problem, value."""
    console = Console(stderr=True, soft_wrap=False, width=max(Console().width, 120))
    table = Table(title=f"{len(findings)} error(s)", show_lines=False, title_justify="left")
    table.add_column("location", no_wrap=True)
    table.add_column("field")
    table.add_column("problem")
    table.add_column("value")
    for f in findings:
        table.add_row(f.location(), f.field, f.message, f.value or "")
    console.print(table)


def findings_json(findings: list[Finding]) -> list[dict[str, object]]:
    return [f.as_dict() for f in findings]


def load_valid_repo(repo: Path, *, as_json: bool = False, require_dkim_keys: bool = True) -> Repo:
    """The validated repository at `repo`, or the findings shown and exit 2.

    `require_dkim_keys=False` waives the one rule `relayops dkim generate --missing` fixes.
    """
    result = load_frozen(repo, require_dkim_keys=require_dkim_keys)
    if result.repo is not None:
        return result.repo
    refuse_invalid(repo, result.findings, as_json=as_json)


def refuse_invalid(repo: Path, findings: list[Finding], *, as_json: bool) -> NoReturn:
    """Show why the repository is invalid, the same way for every command, and exit 2."""
    if as_json:
        emit_json({"ok": False, "errors": findings_json(findings)})
        sys.exit(EXIT_INVALID)
    print_findings(findings)
    fail(f"{repo}: invalid repository ({len(findings)} error(s) above); fix them first")


def inventory_of(repo: Repo, inventory: str) -> Inventory:
    """The inventory meant by `--inventory NAME|FILE`: a name, or a file of `repo`'s inventory/."""
    name = inventory
    if inventory.endswith(".py") or "/" in inventory:
        path = inventory_path(repo.root, inventory).resolve()
        if path.parent != (repo.root / "inventory").resolve():
            fail(f"{inventory}: not an inventory of {repo.root} (expected inventory/NAME.py)")
        name = path.stem
    found = repo.inventories.get(name)
    if found is None:
        fail(f"no inventory {name!r} in {repo.root}; known: {', '.join(sorted(repo.inventories))}")
    return found
