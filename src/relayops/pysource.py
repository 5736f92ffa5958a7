"""Positions in a pyinfra inventory, which is Python source: where a finding points.

An inventory is executed, not parsed into positions as YAML is, so a value's place
is found by searching the source for it, starting at the host entry the finding's
path names. Hand-written on purpose: `ast` would give the expressions' positions only
for literals written in place, not for values built by the operator's code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


def position(
    source: str, hosts: Sequence[str], value: Any, path: Sequence[str | int] = ()
) -> tuple[int, int]:
    """Best (line, column) in `source` for `value` at `path` (`relays[h]…`), 1-based.

    The search starts at the host the path names, so a value repeated under another
    host is found where it is wrong; (1, 1) when nothing matches.
    """
    lines = source.splitlines()
    first = 0
    if len(path) > 1 and path[0] == "relays" and isinstance(path[1], int) and path[1] < len(hosts):
        # hosts in order: each one's entry is after the previous one's (a name can repeat)
        for host in hosts[: path[1] + 1]:
            found = find_host_entry(lines, host, first + (1 if first else 0))
            first = found[0] if found else first
    if isinstance(value, dict):
        value = value.get("name") or value.get("address")
    if value is None:
        return (first + 1, 1) if first else (1, 1)
    hit = find_quoted(lines, str(value), first)
    if hit is None:
        return 1, 1
    return hit[0] + 1, hit[1] + 1


def pyinfra_group(value: Any) -> tuple[list[Any] | None, dict[str, Any]]:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict):
        hosts, group = value
        return (list(hosts) if isinstance(hosts, list | tuple) else None), group
    if isinstance(value, list):
        return value, {}
    return None, {}


def find_host_entry(lines: list[str], name: str, start: int) -> tuple[int, int] | None:
    """The line of a host's `("name", {...})` entry: its quoted name opens a tuple or a
    line, never follows a `key:` (the same name as a PTR value is not its entry)."""
    pattern = re.compile(rf"""(?:^|[(\[,])\s*(["']){re.escape(name)}\1\s*(?:,|\)|$)""")
    for number in range(start, len(lines)):
        match = pattern.search(lines[number])
        if match:
            return number, match.start(1)
    return None


def find_quoted(lines: list[str], needle: str, start: int) -> tuple[int, int] | None:
    for number in range(start, len(lines)):
        for quote in ('"', "'"):
            col = lines[number].find(f"{quote}{needle}{quote}")
            if col >= 0:
                return number, col
    return None


def traceback_line(exc: BaseException, filename: str) -> int:
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
