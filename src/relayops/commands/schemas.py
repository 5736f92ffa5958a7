"""`relayops schemas`: JSON Schema per file kind, for editors (yaml-language-server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, TypeAdapter

from relayops.commands.options import (
    EXIT_CODES_HELP,
    emit_json,
    fail,
    json_option,
    repo_option,
)
from relayops.model import Customer
from relayops.model.inventory import KEY_PREFIX, GroupVars, HostVars
from relayops.model.policies import AntiSpam, PlansFile, Service, ThrottlingFile, WarmupFile
from relayops.model.released import ReleasedIpsFile
from relayops.policyd.contract import PolicyFile

SCHEMAS: dict[str, type[BaseModel]] = {
    "customer": Customer,
    "plans": PlansFile,
    "antispam": AntiSpam,
    "warmup": WarmupFile,
    "throttling": ThrottlingFile,
    "service": Service,
    "released-ips": ReleasedIpsFile,
    # What the compiler writes and the daemon reads: /etc/relayops/policy.json.
    "policy": PolicyFile,
}


def inventory_schema() -> dict[str, Any]:
    """The `relays` value of an inventory/*.py: `([(name, host data), …], group data)`.

    Keys other than `relayops_*` are pyinfra's (`ssh_*`, …) and allowed; a `relayops_*`
    key must be one model/inventory.py declares."""
    shape = TypeAdapter(tuple[list[tuple[str, HostVars]], GroupVars])
    schema: dict[str, Any] = shape.json_schema()
    for model in (HostVars, GroupVars):
        definition = schema["$defs"][model.__name__]
        definition.pop("additionalProperties", None)
        definition["propertyNames"] = {
            "anyOf": [
                {"not": {"pattern": f"^{KEY_PREFIX}"}},
                {"enum": list(model.model_fields)},
            ]
        }
    schema["title"] = "relays"
    schema["description"] = (
        "The `relays` group of a pyinfra inventory (inventory/NAME.py): the hosts with their "
        "data, then the group's data. Declared in src/relayops/model/inventory.py."
    )
    return schema


def render_schemas() -> dict[str, str]:
    """File name → content of every schema, deterministic."""
    out: dict[str, str] = {}
    models: dict[str, Any] = {**SCHEMAS, "inventory": None}
    for name, model in models.items():
        schema: dict[str, Any] = inventory_schema() if model is None else model.model_json_schema()
        if model is Customer:  # the id is the file name, never written in the file
            schema["properties"].pop("id", None)
            schema["required"] = [r for r in schema.get("required", []) if r != "id"]
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@click.option("--check", is_flag=True, help="Fail if the committed schemas are stale.")
@json_option
def schemas(repo: Path, check: bool, as_json: bool) -> None:
    """Write schemas/*.schema.json from the models."""
    folder = repo / "schemas"
    stale = []
    for name, content in render_schemas().items():
        path = folder / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(name)
        if not check:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    if as_json:
        emit_json({"ok": not (check and stale), "stale" if check else "written": stale})
    if check and stale:
        fail(f"schemas are stale: {', '.join(stale)}; run `relayops schemas` to regenerate")
    if not as_json:
        click.echo("schemas up to date" if not stale else f"wrote {', '.join(stale)}")
