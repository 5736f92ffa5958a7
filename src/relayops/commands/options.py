"""The one command-line convention every `relayops` command follows.

- `--repo DIR`: the policy repository a command reads (default `.`).
- `--inventory NAME|FILE`: the hosts a command targets; a name (`lab`) means
  `inventory/NAME.py` in the repository, a path means that file.
- `--json`: a machine-readable report on stdout whose first key is `ok`.
- Errors: `relayops <command>: <message>` on stderr; exit 2 for invalid input or
  usage, 1 for a check that failed, 0 otherwise (the `EXIT_*` constants).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

DEFAULT_INVENTORY = "lab"

EXIT_CODES_HELP = "Exit codes: 0 ok, 1 a check failed, 2 invalid input or usage."


def repo_option(func: F) -> F:
    option = click.option(
        "--repo",
        "repo",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="Root of the policy repository.",
    )
    return option(func)


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Machine-readable report; its first key is `ok`."
    )(func)


def inventory_option(func: F) -> F:
    option = click.option(
        "--inventory",
        "inventory",
        default=DEFAULT_INVENTORY,
        show_default=True,
        metavar="NAME|FILE",
        help="Hosts to target: an inventory name (inventory/NAME.py) or a file.",
    )
    return option(func)


def inventory_path(repo: Path, inventory: str) -> Path:
    """The inventory file meant by `--inventory NAME|FILE` for `repo`."""
    candidate = Path(inventory)
    if candidate.suffix == ".py" or "/" in inventory:
        return candidate if candidate.is_absolute() or candidate.exists() else repo / candidate
    return repo / "inventory" / f"{inventory}.py"


def inventory_name(inventory: str) -> str:
    """The inventory's name: `lab` for both `lab` and `inventory/lab.py`."""
    return Path(inventory).stem


def command_name() -> str:
    """The running subcommand's full name (`feedback read`), for error messages."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return "relayops"
    parts: list[str] = []
    while ctx.parent is not None:
        parts.append(ctx.info_name or "")
        ctx = ctx.parent
    if not parts and ctx.command.name and ctx.command.name != "cli":
        return ctx.command.name  # a command invoked on its own (tests, CliRunner)
    return " ".join(reversed(parts)) or "relayops"


def fail(message: str, *, code: int = EXIT_INVALID) -> NoReturn:
    """Print `relayops <command>: <message>` on stderr and exit with `code`."""
    click.echo(f"relayops {command_name()}: {message}", err=True)
    sys.exit(code)


def emit_json(payload: Mapping[str, Any]) -> None:
    """Print a JSON report; `ok` is always its first key."""
    if "ok" not in payload:
        raise ValueError("a JSON report needs an 'ok' key")
    ordered = {"ok": payload["ok"], **{k: v for k, v in payload.items() if k != "ok"}}
    click.echo(json.dumps(ordered, indent=2, default=str))
