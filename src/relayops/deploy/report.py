"""What a pyinfra run did, read back from its output (for `relayops deploy --json`).

pyinfra prints `--> Starting operation: NAME` then one `[host] Status` line per host
(Success, Error, Skipped, No changes). Operations of several hosts that share a
position print as one, their names joined with ", ".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from relayops.deploy.removal import deferred_in

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
        "deferred": deferred_in(output),  # removals waiting for a customer's queued mail
    }


_DETECTED = "--> Detected changes:"
_CHANGE_CELL = re.compile(r"\s{2,}(?P<count>\d+) \((?P<hosts>[^)]*)\)")


def detected_changes(output: str, hosts: Sequence[str] = ()) -> dict[str, list[str]]:
    """Host -> operations a dry run (`pyinfra --dry`) would execute, from its changes table.

    The table has one row per operation: its name, then `N (host, host…)` under
    "Change" and under "Conditional Change" (a check or reload that runs only because
    of a change). Both count: either means the host is not what the repository says.
    pyinfra shortens long host names (`relay2.relay.exampl...`): each is given back its
    full name from `hosts`.
    """
    changes: dict[str, list[str]] = {}
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith(_DETECTED))
    except StopIteration:
        return changes
    for line in lines[start + 2 :]:  # past the header row
        if not line.strip() or line.startswith("-->"):
            break
        cell = _CHANGE_CELL.search(line)
        if cell is None:
            continue
        name = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        for match in _CHANGE_CELL.finditer(line):
            for shown in match["hosts"].split(","):
                host = _full_name(shown.strip(), hosts)
                if host and name not in changes.setdefault(host, []):
                    changes[host].append(name)
    return changes


def _full_name(shown: str, hosts: Sequence[str]) -> str:
    if shown.endswith("..."):
        matches = [h for h in hosts if h.startswith(shown[:-3])]
        if len(matches) == 1:
            return matches[0]
    return shown


def progress_line(line: str) -> str | None:
    """A pyinfra output line as a progress label (`relay1…: Success`), None for others."""
    match = _HOST.match(line)
    if match:
        return f"{match['host']}: {match['status']}"
    if line.startswith(_START):
        return line[len(_START) :].strip()
    return None
