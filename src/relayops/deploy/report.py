"""What a pyinfra run did, read back from its output (for `relayops deploy --json`).

pyinfra prints `--> Starting operation: NAME` then one `[host] Status` line per host
(Success, Error, Skipped, No changes). Operations of several hosts that share a
position print as one, their names joined with ", ".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_START = "--> Starting operation:"
_HOST = re.compile(r"^\s+\[(?P<host>[^\]]+)\] (?P<status>Success|Error|Skipped|No changes)\b")


@dataclass
class OperationRun:
    name: str
    hosts: dict[str, str] = field(default_factory=dict)  # host -> Success/Error/Skipped...


def parse_operations(output: str) -> list[OperationRun]:
    runs: list[OperationRun] = []
    for line in output.splitlines():
        if line.startswith(_START):
            runs.append(OperationRun(line[len(_START) :].strip()))
            continue
        match = _HOST.match(line)
        if match and runs:
            runs[-1].hosts[match["host"]] = match["status"]
    return runs


def summary(output: str) -> dict[str, Any]:
    """Changed and failed hosts with their operations; no operation at all means no change."""
    runs = parse_operations(output)
    changed: dict[str, list[str]] = {}
    failed: dict[str, list[str]] = {}
    for run in runs:
        for host, status in run.hosts.items():
            if status == "Success":
                changed.setdefault(host, []).append(run.name)
            elif status == "Error":
                failed.setdefault(host, []).append(run.name)
    return {
        "operations": [{"name": r.name, "hosts": r.hosts} for r in runs],
        "changed": changed,
        "failed": failed,
    }


def progress_line(line: str) -> str | None:
    """A pyinfra output line as a progress label (`relay1…: Success`), None for others."""
    match = _HOST.match(line)
    if match:
        return f"{match['host']}: {match['status']}"
    if line.startswith(_START):
        return line[len(_START) :].strip()
    return None
