"""When a pause ends, schedule the mail it held at once instead of at its next retry.

Mail for a paused IP × class waits deferred in the output instance's queue: deferred by
the receiver's own "slow down" reply, or by the socketmap's `retry:` while the pause held.
Postfix would try it again only after its back-off time (minimal_backoff_time, 300 s,
doubling up to maximal_backoff_time, 4000 s), which can be long after the pause ended.
`postqueue -i` schedules exactly the deferred messages with a recipient in that class;
nothing else in the queue is touched. If this fails the mail still leaves at its next
retry: a shortcut, never the only way out.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from relayops.backoff.socketmap import class_table, instance_of

Run = Callable[[Sequence[str]], str]  # argv -> stdout; raises OSError/SubprocessError


def held_ids(queue_json: Iterable[str], *, classes: Mapping[str, str], isp_class: str) -> list[str]:
    """Deferred queue IDs (postqueue -j lines) with a recipient whose domain is in the class
    (`classes`: domain -> class, the instance's transport table)."""
    ids: set[str] = set()
    for line in queue_json:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("queue_name") != "deferred":
            continue
        recipients = entry.get("recipients")
        if not isinstance(recipients, list):
            continue
        for r in recipients:
            if not isinstance(r, dict):
                continue
            domain = str(r.get("address", "")).rpartition("@")[2].lower().rstrip(".")
            if classes.get(domain) == isp_class:
                ids.add(str(entry.get("queue_id", "")))
    return sorted(i for i in ids if i.isalnum())


def run_command(argv: Sequence[str]) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=60)
    return done.stdout


def release(sender: str, isp_class: str, *, etc: Path, run: Run = run_command) -> int:
    """Schedule now the deferred mail of sender × class; returns how many messages."""
    config = etc / instance_of(sender)
    classes = class_table((config / "transport").read_text(encoding="utf-8", errors="replace"))
    queue = run(["postqueue", "-c", str(config), "-j"]).splitlines()
    ids = held_ids(queue, classes=classes, isp_class=isp_class)
    for queue_id in ids:
        run(["postqueue", "-c", str(config), "-i", queue_id])
    return len(ids)
