"""What `lab up` built, recorded so `status`, `down` and the DNS/sink helpers find it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from relayops.lab.topology import Topology


@dataclass(frozen=True)
class LabState:
    index: int
    relays: int
    image_key: str
    started_at: float

    @property
    def topology(self) -> Topology:
        return Topology(index=self.index, relay_count=self.relays)


def state_path(index: int) -> Path:
    return Topology(index=index, relay_count=1).state_file


def save(state: LabState) -> None:
    path = state.topology.state_file
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    os.replace(tmp, path)


def load(index: int = 0) -> LabState | None:
    """The recorded state of lab `index`, or None when it was never brought up (or went down)."""
    path = state_path(index)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return LabState(
        index=int(data["index"]),
        relays=int(data["relays"]),
        image_key=str(data["image_key"]),
        started_at=float(data["started_at"]),
    )


def clear(index: int) -> None:
    state_path(index).unlink(missing_ok=True)
