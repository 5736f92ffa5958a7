"""`relayops feedback ingest`: one message from Postfix's pipe → spool, reading, ledger.

Order, so that nothing is lost and nothing is done twice:

1. keep the raw message in the spool (always; at most `MAX_SPOOL_BYTES` of it, named by
   its sha256 so a redelivery overwrites the same file; the spool keeps `max_files`);
2. read it (`read_report`, total on any input);
3. decide (`consequences.decide`, pure) from the customer's figures in the ledger;
4. apply the decision to the ledger in one atomic call keyed by the sha256 (a retried
   delivery is a no-op), then queue the customer's notices in the store's outbox (the
   policy daemon sends them, policyd/outbox.py) and log what the operator must see;
5. write the outcome beside the spooled message (``<sha256>.json``) for review.

A store that cannot be reached raises `LedgerError` (the CLI exits 75, EX_TEMPFAIL,
so Postfix keeps the report and retries); anything about the message itself is
recorded and returns normally.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from relayops.feedback.consequences import Decision, decide
from relayops.feedback.maillog import Failure, failure_key
from relayops.feedback.model import Kind, Origin, Recipient, Report
from relayops.feedback.parse import MAX_PARSE_BYTES
from relayops.feedback.reader import read_report
from relayops.policyd.ledger import AuditEntry, Change, Ledger, Suppression, Tally
from relayops.policyd.notices import NoticeRequest
from relayops.policyd.rules import AntiSpamRules, Rules

log = logging.getLogger("relayops.feedback.ingest")

MAX_SPOOL_BYTES = MAX_PARSE_BYTES + 1  # what the reader can use, plus the "cut" marker byte
MAX_SPOOL_FILES = 10_000  # the spool keeps the newest; older are deleted
WHO = "ingest"
# Where a decision's notices go: outbox.queue_notice into the daemon's store, bound by the
# CLI to the --store it was given (tests pass a list's append).
Notify = Callable[[NoticeRequest], None]


def _send(decision: Decision, notify: Notify | None) -> None:
    """Queue the customer's notices; log the operator's notes. The ledger change stands
    whatever happens here (a notice that cannot be queued is logged)."""
    for note in decision.operator:
        log.warning(
            "event=operator_attention kind=%s customer=%s why=%r",
            note.kind,
            note.customer,
            note.why,
        )
    if notify is None:
        return
    for notice in decision.notices:
        try:
            notify(notice)
        except Exception as exc:  # the store's own errors (sqlite3, redis) or a NoticeError
            log.error("event=notice_not_queued kind=%s error=%r", notice.kind, str(exc))


@dataclass(frozen=True)
class Received:
    """The head of the message (at most MAX_SPOOL_BYTES) and its full size."""

    head: bytes
    size: int
    digest: str  # sha256 of the whole message

    @property
    def cut(self) -> bool:
        return self.size > len(self.head)


def receive(stream: BinaryIO, *, keep: int = MAX_SPOOL_BYTES, chunk: int = 1 << 16) -> Received:
    """Read the whole stream (so Postfix's pipe never fails on a 50 MB message) but
    keep only its first `keep` bytes."""
    sha = hashlib.sha256()
    head = bytearray()
    size = 0
    while block := stream.read(chunk):
        sha.update(block)
        size += len(block)
        if len(head) < keep:
            head += block[: keep - len(head)]
    return Received(bytes(head), size, sha.hexdigest())


class Spool:
    """Raw reports kept for review: ``<sha256>.eml`` + ``<sha256>.json`` (the outcome)."""

    def __init__(self, root: Path, *, max_files: int = MAX_SPOOL_FILES) -> None:
        self.root = root
        self.max_files = max_files

    def keep(self, received: Received) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o750)
        path = self.root / f"{received.digest}.eml"
        _atomic(path, received.head)
        self._prune()
        return path

    def outcome(self, digest: str, data: dict[str, Any]) -> None:
        _atomic(self.root / f"{digest}.json", json.dumps(data, sort_keys=True).encode())

    def _prune(self) -> None:
        kept = sorted(self.root.glob("*.eml"), key=lambda p: p.stat().st_mtime)
        for old in kept[: max(0, len(kept) - self.max_files)]:
            for path in (old, old.with_suffix(".json")):
                path.unlink(missing_ok=True)


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)


def safe_read(data: bytes, key: bytes | None) -> Report | None:
    """`read_report`, which never raises by contract; a bug there must still not lose mail."""
    try:
        return read_report(data, trace_key=key)
    except Exception:
        log.exception("event=reader_failed")
        return None


def to_change(digest: str, decision: Decision, policy: AntiSpamRules, *, now: datetime) -> Change:
    ts = now.timestamp()
    cid = decision.customer
    suppress = tuple(
        Suppression(
            cid or "",
            address,
            ts,
            (now + timedelta(days=policy.suppress_days)).timestamp(),
            "hard bounce",
        )
        for address in decision.suppress
        if cid
    )
    audit: list[AuditEntry] = []
    if cid and decision.disable:
        audit.append(AuditEntry(ts, cid, "disabled", WHO, decision.disable))
    if cid and decision.suspend:
        audit.append(AuditEntry(ts, cid, "suspension-proposed", WHO, decision.suspend))
    for s in suppress:
        audit.append(AuditEntry(ts, s.customer, "suppressed", WHO, s.address))
    return Change(
        digest,
        cid,
        now.astimezone(UTC).date(),
        dict(decision.counts),
        suppress,
        decision.disable,
        tuple(audit),
    )


def ingest(
    received: Received,
    *,
    ledger: Ledger,
    policy: AntiSpamRules,
    spool: Spool,
    notify: Notify | None,
    key: bytes | None,
    now: datetime,
) -> dict[str, Any]:
    """Spool, read, decide, apply; returns the outcome (also written to the spool)."""
    path = spool.keep(received)
    outcome: dict[str, Any] = {
        "ok": True,
        "spooled": str(path),
        "size": received.size,
        "cut": received.cut,
        "sha256": received.digest,
    }
    report = safe_read(received.head, key)
    if report is None:
        outcome.update(kind="unreadable", applied=False, why="the reader failed (see the log)")
        spool.outcome(received.digest, outcome)
        return outcome
    outcome["kind"] = report.kind.value
    outcome["feedback_type"] = report.feedback_type
    customer = report.origin.customer if report.origin.trace_verified else None
    before = (
        ledger.tally(customer, days=policy.window_days, today=now.astimezone(UTC).date())
        if customer
        else Tally()
    )
    decision = decide(report, policy, before, now=now, original=received.head)
    queue_id = report.origin.reporting_queue_id
    if report.kind is Kind.BOUNCE and queue_id and report.recipients:
        applied, recorded_before = _apply_per_recipient(
            report, queue_id, ledger=ledger, policy=policy, before=before, now=now, notify=notify
        )
        outcome["recorded_before"] = recorded_before
    else:
        applied = ledger.apply(to_change(received.digest, decision, policy, now=now))
        if applied:
            _send(decision, notify)
    outcome.update(
        applied=applied,
        customer=decision.customer,
        why=decision.unattributed,
        counts=decision.counts,
        suppressed=list(decision.suppress),
        disabled=decision.disable,
        suspension_proposed=decision.suspend,
        notices=[n.kind for n in decision.notices],
        operator=[n.kind for n in decision.operator],
    )
    spool.outcome(received.digest, outcome)
    return outcome


def _apply_per_recipient(
    report: Report,
    queue_id: str,
    *,
    ledger: Ledger,
    policy: AntiSpamRules,
    before: Tally,
    now: datetime,
    notify: Notify | None,
) -> tuple[bool, list[str]]:
    """A Postfix DSN, one recipient at a time under `failure_key(queue id, recipient)`:
    the key the log follower (`relayops feedback maillog`) records the same refusal
    under, so a relay's own bounce forwarded to us is not counted a second time.
    (applied at all, the addresses recorded before)."""
    applied, recorded_before = False, []
    for recipient in report.recipients:
        single = replace(report, recipients=(recipient,))
        decision = decide(single, policy, before, now=now)
        key = failure_key(queue_id, recipient.address)
        if ledger.apply(to_change(key, decision, policy, now=now)):
            applied = True
            before = before.plus(decision.counts)
            _send(decision, notify)
        else:
            recorded_before.append(recipient.address)
    return applied, recorded_before


def failure_customer(failure: Failure, rules: Rules) -> str | None:
    """Whose failed delivery: the SASL login's subscription, else the envelope sender (a
    login itself, else its domain's one owner). An output instance's log has no login."""
    for login in (failure.login, failure.sender):
        customer = rules.by_login.get(login.lower()) if login else None
        if customer is not None:
            return customer.id
    domain = (failure.sender or "").rpartition("@")[2].lower().rstrip(".")
    owners = [c.id for c in rules.customers.values() if domain and domain in c.domains]
    return owners[0] if len(owners) == 1 else None


def record_failure(
    failure: Failure,
    *,
    rules: Rules,
    ledger: Ledger,
    notify: Notify | None,
    now: datetime,
) -> dict[str, Any]:
    """A bounced recipient from the relay's own log, through the same decision as a
    mailed bounce. The log is our own, so its attribution is trusted."""
    cid = failure_customer(failure, rules)
    recipient = Recipient(
        failure.address, failure.status, None, failure.reply, failure.reason, failure.hard,
        action="failed",
    )  # fmt: skip
    origin = Origin(customer=cid, login=failure.login, trace_verified=cid is not None)
    report = Report(Kind.BOUNCE, recipients=(recipient,), origin=origin)
    policy = rules.antispam
    today = now.astimezone(UTC).date()
    before = ledger.tally(cid, days=policy.window_days, today=today) if cid else Tally()
    decision = decide(report, policy, before, now=now)
    applied = ledger.apply(to_change(failure.digest, decision, policy, now=now))
    if applied:
        _send(decision, notify)
    return {
        "queue_id": failure.queue_id,
        "customer": cid,
        "address": failure.address,
        "status": failure.status,
        "reason": failure.reason.value,
        "hard": failure.hard,
        "applied": applied,
        "suppressed": list(decision.suppress),
    }
