"""`relayops feedback propose`: complaint-rate breaches as proposed suspensions.

The relay's ingester cannot edit the repository; it disables the customer in the
store and records ``suspension-proposed`` with the figures in the ledger's audit
trail. This turns each such entry for a customer still active in the repository into
a patch of ``customers/<id>.yaml`` (status: suspended, status_reason with the
figures, status_date) made with the same editing code as `relayops customer
suspend`, validated against the whole repository, and written as
``<out>/<id>-suspend.patch`` for review: ``git apply`` it, or throw it away.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from relayops import customer_edits as edits
from relayops.crossref import customer_file
from relayops.loader import load_repo
from relayops.model import Status
from relayops.policyd.ledger import Ledger

ACTION = "suspension-proposed"


@dataclass(frozen=True)
class Proposal:
    customer: str
    reason: str
    patch: str  # unified diff, a/ and b/ prefixes (git apply)


def proposals(root: Path, ledger: Ledger, *, today: date) -> tuple[list[Proposal], list[str]]:
    """The patches to propose, and why other entries were skipped."""
    result = load_repo(root, today=today)
    if result.repo is None:
        return [], [f"{root} is invalid ({len(result.findings)} error(s)): relayops validate"]
    repo = result.repo
    latest: dict[str, str] = {}
    for entry in reversed(ledger.audit(None, limit=10_000)):  # oldest first: newest wins
        if entry.action == ACTION:
            latest[entry.customer] = entry.why
    out: list[Proposal] = []
    skipped: list[str] = []
    for cid, reason in sorted(latest.items()):
        customer = repo.customers.get(cid)
        if customer is None:
            skipped.append(f"{cid}: no {customer_file(cid)}")
            continue
        if customer.status is not Status.ACTIVE:
            skipped.append(f"{cid}: already {customer.status.value}")
            continue
        rel = customer_file(cid)
        before = (root / rel).read_text(encoding="utf-8")
        after = edits.set_status(before, rel, status=Status.SUSPENDED, reason=reason, day=today)
        check = load_repo(root, today=today, overlay={rel: after.encode("utf-8")})
        if check.repo is None:
            skipped.append(f"{cid}: the edit would leave the repository invalid")
            continue
        patch = "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=f"a/{rel}",
                tofile=f"b/{rel}",
            )
        )
        out.append(Proposal(cid, reason, patch))
    return out, skipped
