"""Queue a notice for the policy daemon to send: the entry point for other components.

The feedback ingester (`relayops feedback ingest`, a Postfix pipe process) and the
operator's `relayops feedback release` run in their own processes; they reach the
daemon through the store they share. This is the one notice path: nothing else
queues notices (no spool directory). `queue_notice(store, NoticeRequest(...))` appends the
request to the store's outbox (a SQLite table or a Redis list); the daemon
polls it every second, takes each request once (in a fleet, exactly one daemon
pops it), renders it with the current rules and sends it to the contact
address and the customer's IMAP mailbox. A request the daemon cannot send
(unknown customer, wrong context fields) is logged as `event=notice_refused`.

    from relayops.policyd.notices import NoticeRequest
    from relayops.policyd.outbox import queue_notice

    queue_notice("sqlite:/var/lib/relayops/policyd.sqlite",
                 NoticeRequest("disabled", "acme", {"reason": "complaint from example.org"}))
"""

from __future__ import annotations

from pathlib import Path

from relayops.policyd.ledger import REDIS_SCHEMES
from relayops.policyd.notices import CONTEXT_FIELDS, REQUESTABLE, NoticeError, NoticeRequest


def check_shape(request: NoticeRequest) -> None:
    """What can be checked without the rules: the kind and its context fields."""
    if request.kind not in REQUESTABLE:
        raise NoticeError(
            f"notice kind {request.kind!r} cannot be requested; "
            f"one of: {', '.join(sorted(REQUESTABLE))}"
        )
    wanted = CONTEXT_FIELDS[request.kind]
    if set(request.context) != wanted:
        raise NoticeError(
            f"{request.kind} notice: context needs exactly {sorted(wanted)}, "
            f"got {sorted(request.context)}"
        )
    if (request.kind == "complaint") != (request.attachment is not None):
        raise NoticeError(f"{request.kind} notice: an attachment goes with a complaint only")


def queue_notice(store: str, request: NoticeRequest, *, password: str | None = None) -> None:
    """Queue `request` in the store `store` (the daemon's ``--store``: ``sqlite:PATH`` or
    any of its Redis URL forms; `password` that of ``--store-password-file``).
    NoticeError for a malformed request or store spec; the store's own errors
    (sqlite3.Error, redis.RedisError) propagate."""
    check_shape(request)
    text = request.to_json()
    if store.startswith("sqlite:"):
        from relayops.policyd.store_sqlite import queue_notice as queue_sqlite

        queue_sqlite(Path(store[len("sqlite:") :]), text)
    elif store.startswith(REDIS_SCHEMES):
        from relayops.policyd.store_redis import queue_notice as queue_redis

        try:
            queue_redis(store, text, password=password)
        except ValueError as exc:  # the URL (redis_url.py)
            raise NoticeError(str(exc)) from None
    else:
        shown = store.split("@")[-1]
        raise NoticeError(f"expected sqlite:PATH or a Redis URL, got {shown!r}")
