"""Queue a notice for the policy daemon to send: the entry point for other components.

Feedback-loop tooling runs in its own process; it reaches the daemon through
the store they share. `queue_notice(store, NoticeRequest(...))` appends the
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


def queue_notice(store: str, request: NoticeRequest) -> None:
    """Queue `request` in the store `store` (``sqlite:PATH`` or ``redis://HOST:PORT/N``,
    the daemon's ``--store``). NoticeError for a malformed request or store spec;
    the store's own errors (sqlite3.Error, redis.RedisError) propagate."""
    check_shape(request)
    text = request.to_json()
    if store.startswith("sqlite:"):
        from relayops.policyd.store_sqlite import queue_notice as queue_sqlite

        queue_sqlite(Path(store[len("sqlite:") :]), text)
    elif store.startswith("redis://"):
        from relayops.policyd.store_redis import queue_notice as queue_redis

        queue_redis(store, text)
    else:
        raise NoticeError(f"expected sqlite:PATH or redis://HOST:PORT/N, got {store!r}")
