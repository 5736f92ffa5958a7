"""Helpers shared by the `relayops customer` tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

TODAY = "2026-11-23"
Run = Callable[..., Result]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the repository: a refused command must leave all of them as they were."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def add_free_dedicated_ip(root: Path, name: str = "dedicated-4") -> None:
    """Give relay2 one more dedicated IP in both inventories, so swap-ip has one to take."""
    for inventory, address in (("production", "203.0.113.123"), ("lab", "198.18.0.123")):
        path = root / "inventory" / f"{inventory}.py"
        text = path.read_text(encoding="utf-8")
        anchor = '"ptr": "o4.relay.example.net"},\n'
        assert anchor in text
        extra = (
            f'                    {{"name": "{name}", "address": "{address}", '
            '"dedicated": True,\n                     "ptr": "o5.relay.example.net"},\n'
        )
        path.write_text(text.replace(anchor, anchor + extra, 1), encoding="utf-8")
