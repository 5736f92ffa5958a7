"""The watcher's compiled configuration, /etc/relayops/backoff.json (one format, both sides).

The compiler writes it from policies/throttling.yaml (each class's `back_off.pause_seconds`)
and the host's output instances (their logs); `relayops backoff watch --config` reads it
at start and on SIGHUP, so a policy change needs no restart and no Postfix reload.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class BackoffConfigError(ValueError):
    """The file is missing or not the compiler's format; the message names it."""


class BackoffConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # ISP class -> how long a "slow down" reply pauses it for the IP it answered.
    pause_seconds: dict[str, int] = Field(default_factory=dict)
    # The output instances' maillog_file paths, one per sending IP of the host.
    maillogs: list[str] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def load_config(path: Path) -> BackoffConfig:
    try:
        return BackoffConfig.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise BackoffConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top)"
        raise BackoffConfigError(f"{path}: {where}: {first['msg']}") from None
