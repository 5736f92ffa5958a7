"""`relayops schemas`: JSON Schema per file kind, for editors (yaml-language-server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from relayops.commands.options import repo_option
from relayops.model import Customer
from relayops.model.policies import AntiSpam, PlansFile, Service, ThrottlingFile, WarmupFile
from relayops.model.released import ReleasedIpsFile

SCHEMAS: dict[str, type[BaseModel]] = {
    "customer": Customer,
    "plans": PlansFile,
    "antispam": AntiSpam,
    "warmup": WarmupFile,
    "throttling": ThrottlingFile,
    "service": Service,
    "released-ips": ReleasedIpsFile,
}


def render_schemas() -> dict[str, str]:
    """File name → content of every schema, deterministic."""
    out: dict[str, str] = {}
    for name, model in SCHEMAS.items():
        schema: dict[str, Any] = model.model_json_schema()
        if model is Customer:  # the id is the file name, never written in the file
            schema["properties"].pop("id", None)
            schema["required"] = [r for r in schema.get("required", []) if r != "id"]
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


@click.command()
@repo_option
@click.option("--check", is_flag=True, help="Fail if the committed schemas are stale.")
def schemas(repo: Path, check: bool) -> None:
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
    if check and stale:
        raise click.ClickException(
            f"schemas are stale: {', '.join(stale)}; run `relayops schemas` to regenerate"
        )
    click.echo("schemas up to date" if not stale else f"wrote {', '.join(stale)}")
