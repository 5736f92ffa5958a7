"""Write compiled host trees to disk: `OUT/<host>/etc/...` plus `OUT/<host>.manifest.json`.

Secrets are not written: the manifest names each one and its encrypted source.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from relayops.compile.files import HostConfig

MANIFEST_SUFFIX = ".manifest.json"


def manifest_text(config: HostConfig) -> str:
    return json.dumps(config.manifest(), indent=2, sort_keys=True) + "\n"


def write_host(config: HostConfig, out: Path) -> Path:
    """Replace `out/<host>/` with the host's files; return the tree's root."""
    root = out / config.host
    if root.exists():
        shutil.rmtree(root)
    for item in config.files:
        target = root / item.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.content)
    (out / (config.host + MANIFEST_SUFFIX)).write_text(manifest_text(config), encoding="utf-8")
    return root


def write_hosts(configs: Mapping[str, HostConfig], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [write_host(configs[name], out) for name in sorted(configs)]


def read_tree(root: Path) -> dict[str, bytes]:
    """Files under a rendered host tree by absolute host path (for golden comparisons)."""
    return {
        "/" + p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
