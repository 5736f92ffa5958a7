"""The notice hook: a `NoticeRequest` queued as files in a spool directory.

The feedback ingester runs as a short-lived Postfix pipe process and must not send
mail itself (a slow MTA would hold the pipe). It queues what should be said and to
whom; the daemon's notifier renders and sends the queued requests (notices helper).
One request is two files written atomically (temp file + rename), named by time
and a random suffix so concurrent ingesters never collide:

    <spool>/<unix-ns>-<hex>.json      {"kind", "customer", "context": {str: str},
                                       "attachment": "<name>.eml" | null}
    <spool>/<unix-ns>-<hex>.eml       the attachment (the report as received), if any

The ``.json`` file is renamed into place last: a reader takes only ``*.json``
and finds its attachment already there. Kinds queued today (docs/feedback.md):
``complaint-copy`` (to the customer, the report attached), ``operator-complaint``,
``operator-suspension-proposed``, ``operator-bounce-rate``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class NoticeRequest:
    kind: str
    customer: str
    context: dict[str, str] = field(default_factory=dict)
    attachment: bytes | None = None


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o640)  # reports name recipients: not world-readable
    os.replace(tmp, path)


def queue_notice(spool: Path, request: NoticeRequest) -> Path:
    """Queue one request; returns its ``.json`` path. OSError when the spool is unusable."""
    spool.mkdir(parents=True, exist_ok=True)
    stem = f"{time.time_ns()}-{secrets.token_hex(4)}"
    attachment = None
    if request.attachment is not None:
        attachment = f"{stem}.eml"
        _write(spool / attachment, request.attachment)
    body = {
        "kind": request.kind,
        "customer": request.customer,
        "context": request.context,
        "attachment": attachment,
    }
    target = spool / f"{stem}.json"
    _write(target, json.dumps(body, sort_keys=True).encode())
    return target


def read_notice(path: Path) -> NoticeRequest:
    """A queued request back (for the sender and the tests)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    attachment = (path.parent / data["attachment"]).read_bytes() if data["attachment"] else None
    return NoticeRequest(data["kind"], data["customer"], dict(data["context"]), attachment)
