"""When a pause ends, schedule the mail it held at once instead of at its next retry.

Mail a pause held is deferred in the output instance's queue with the socketmap's retry
reason as its delay reason (`relayops paused <class> for <sender> until …`); Postfix
would try it again only after its back-off time (minimal_backoff_time, 300 s, doubling
up to 4000 s), which can be much later than the pause's end. `postqueue -i` schedules
exactly those messages now; nothing else in the queue is touched. If this fails the mail
still leaves at its next retry: it is a shortcut, never the only way out.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Sequence

from relayops.backoff.socketmap import held_marker, instance_of

Run = Callable[[Sequence[str]], str]  # argv -> stdout; raises OSError/CalledProcessError


def held_ids(queue_json: Iterable[str], *, sender: str, isp_class: str) -> list[str]:
    """Queue IDs (postqueue -j lines) with a recipient the pause of sender × class held."""
    marker = held_marker(sender, isp_class) + " "
    ids: list[str] = []
    for line in queue_json:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        recipients = entry.get("recipients")
        if not isinstance(recipients, list):
            continue
        if any(
            isinstance(r, dict) and marker in str(r.get("delay_reason", "")) for r in recipients
        ):
            ids.append(str(entry.get("queue_id", "")))
    return sorted(i for i in ids if i.isalnum())


def run_command(argv: Sequence[str]) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=60)
    return done.stdout


def release(sender: str, isp_class: str, *, etc: str = "/etc", run: Run = run_command) -> int:
    """Schedule now the mail held for sender × class; returns how many messages."""
    config = f"{etc}/{instance_of(sender)}"
    ids = held_ids(
        run(["postqueue", "-c", config, "-j"]).splitlines(), sender=sender, isp_class=isp_class
    )
    for queue_id in ids:
        run(["postqueue", "-c", config, "-i", queue_id])
    return len(ids)
