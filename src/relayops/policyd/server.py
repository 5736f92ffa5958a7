"""Lifecycle: rules, store, notifier and listener wired together; SIGHUP, SIGTERM, sweeps.

Notices beyond the charge path's warning/limit (notices.py says which is due
when): at start and on each reload the daemon swaps every customer's status
into the store and sends the suspended/terminated notice for a change the
store had not seen (so a restart for new code announces it too, and of daemons
sharing Redis only the first to swap does); a sweep every ROLL_INTERVAL
seconds sends `resumed` to each customer whose local day has just begun after
a day at its limit (claimed in the store, so sent once), as does a reload that moves a
customer's time zone into a later date; the store's outbox is
polled every OUTBOX_INTERVAL seconds for requests of other components (each
taken by one daemon).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import re
import resource
import signal
import stat
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from relayops.policyd import logsink
from relayops.policyd.feedback_metrics import FeedbackFigures
from relayops.policyd.message_checks import Refusal as MessageRefusal
from relayops.policyd.milter import MilterConnection
from relayops.policyd.notices import (
    NoticeError,
    NoticeRequest,
    days_moved,
    days_started,
    render,
    render_request,
    resumed_values,
    status_notices,
    status_values,
)
from relayops.policyd.notify import Notifier
from relayops.policyd.protocol import Deferred, PolicyConnection, Stats, sweep
from relayops.policyd.rules import (
    Charge,
    ChargeStatus,
    Customer,
    Notice,
    Outcome,
    Refusal,
    Rules,
    RulesError,
    Verdict,
    assess,
    conclude,
    load_rules,
)
from relayops.policyd.stamp import stamp_action
from relayops.policyd.store import UNAVAILABLE, Store, StoreError
from relayops.policyd.suppress import Suppressions, reply

log = logging.getLogger("relayops.policyd")

SWEEP_INTERVAL = 5.0
OUTBOX_INTERVAL = 1.0  # seconds between two looks at the store's outbox
ROLL_INTERVAL = 30.0  # seconds between two looks for local days that began ("resumed")
OUTBOX_BATCH = 100


def _utcnow() -> datetime:
    return datetime.now(UTC)


# \w is exactly str.isalnum() plus "_" (checked over every code point), so this
# accepts the same non-empty values the per-character test did.
_BARE_VALUE: Final = re.compile(r"[\w\-.@:/+]+").fullmatch


def _logfmt_value(value: object) -> str:
    text = str(value)
    if _BARE_VALUE(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The logfmt form of values that recur in refusal lines (a customer's 452 reply, its
# login, the client's address): looked up rather than matched and quoted each time
# (bounded: values arrive from outside too).
_logfmt_recurring = functools.lru_cache(maxsize=4096)(_logfmt_value)


_REASONS: Final = {reason: reason.value for reason in Refusal}  # no Enum.value per line


class PolicyServer:
    """The request handler: assess → store → conclude, plus its counters and reloads."""

    def __init__(
        self,
        *,
        rules: Rules,
        rules_path: Path | None,
        store: Store,
        notifier: Notifier,
        fail_open: bool,
        clock: Callable[[], datetime] = _utcnow,
        suppressions: Suppressions | None = None,
        feedback: FeedbackFigures | None = None,
        trace_key: bytes | None = None,
    ) -> None:
        self.rules = rules
        self.rules_path = rules_path
        self.store = store
        self.notifier = notifier
        self.fail_open = fail_open
        self.clock = clock
        # What assess() is given: the default clock as a timestamp (no datetime per request).
        self._now: Callable[[], datetime | float] = time.time if clock is _utcnow else clock
        self.stats = Stats()
        self.refusals: dict[str, int] = {}
        self.reloads = {"ok": 0, "failed": 0}
        self.connections: set[PolicyConnection] = set()
        self.suppressions = suppressions
        self.feedback = feedback  # per-customer feedback metrics (read at scrape time)
        self.trace_key = trace_key  # signs X-Relayops-Trace (stamp.py)
        self._tasks: set[asyncio.Task[None]] = set()
        self.milter_connections: set[MilterConnection] = set()
        self.message_refusals: dict[str, int] = {}

    def milter_connection(self) -> MilterConnection:
        """A milter session that reads the current rules per message (reloads apply)."""
        return MilterConnection(lambda: self.rules, self._message_refused, self.milter_connections)

    def _message_refused(self, login: str, refusal: MessageRefusal) -> None:
        reason = refusal.problem.value
        self.message_refusals[reason] = self.message_refusals.get(reason, 0) + 1
        if log.isEnabledFor(logging.INFO):
            fields = {"event": "refused", "reason": reason, "login": login, "reply": refusal.reply}
            log.info(" ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items()))

    def handle(self, request: Mapping[str, str]) -> str | Deferred:
        rules = self.rules  # one reference for the whole request, even across a reload
        step = assess(request, rules, self._now())
        if isinstance(step, Verdict):
            if step.refusal is not None:
                self._refused(request, step)
            elif "policy_context" in request:
                return self._stamp(request, rules) or step.action
            return step.action
        if self.suppressions is not None and not self.suppressions.quiet():
            suppressed = self._suppressed(request, step)
            if suppressed is not None:
                return suppressed
        outcome = self.store.charge(step)
        if isinstance(outcome, Outcome):
            return self._conclude(request, step, outcome, rules)

        def then(result: Outcome) -> str:
            return self._conclude(request, step, result, rules)

        return Deferred(outcome, then)

    def _stamp(self, request: Mapping[str, str], rules: Rules) -> str | None:
        """PREPEND the trace stamp / Feedback-ID at DATA for a customer's message."""
        if request.get("protocol_state", "").upper() != "DATA":
            return None
        customer = rules.by_login.get(request.get("sasl_username", "").lower())
        if customer is None:
            return None
        now = int(self.clock().timestamp())
        return stamp_action(request, customer.id, key=self.trace_key, now=now)

    def _suppressed(self, request: Mapping[str, str], charge: Charge) -> str | None:
        """The 550 for a suppressed recipient (not counted), or the store-error answer."""
        assert self.suppressions is not None
        cid = charge.customer.id
        recipient = request.get("recipient", "")
        hit = self.suppressions.check(cid, recipient)
        if hit is None:
            return None
        if hit.entry is None:  # stale snapshot: the ledger has not answered for a while
            if self.fail_open:
                return None
            verdict = conclude(charge, UNAVAILABLE, self.rules)
        else:
            verdict = Verdict(reply(hit.entry, recipient), Refusal.SUPPRESSED, cid)
        self._refused(request, verdict)
        return verdict.action

    def _conclude(
        self, request: Mapping[str, str], charge: Charge, outcome: Outcome, rules: Rules
    ) -> str:
        if outcome.status is ChargeStatus.ACCEPTED and not (outcome.warn or outcome.limit_notice):
            # conclude()'s answer here (DUNNO, no notice, no refusal) without building its
            # Verdict: most requests under load take this path.
            return "DUNNO"
        verdict = conclude(charge, outcome, rules, fail_open=self.fail_open)
        for notice in verdict.notices:
            self.notifier.submit(notice)
        if verdict.refusal is not None:
            self._refused(request, verdict)
        return verdict.action

    def _refused(self, request: Mapping[str, str], verdict: Verdict) -> None:
        reason = verdict.refusal
        assert reason is not None
        self.refusals[reason] = self.refusals.get(reason, 0) + 1
        if reason is Refusal.STORE_ERROR:
            return  # the store logs once per outage, not once per request
        if not log.isEnabledFor(logging.INFO):
            return  # counted above; skip building a line nobody will see
        # One f-string rather than a dict joined field by field: a 452 burst writes
        # this line for every refused recipient.
        get, q, r = request.get, _logfmt_value, _logfmt_recurring
        counted = "" if verdict.limit is None else f" count={verdict.count} limit={verdict.limit}"
        logsink.info(
            log,
            f"event=refused reason={_REASONS[reason]} customer={r(verdict.customer or '')} "
            f"login={r(get('sasl_username', ''))} state={r(get('protocol_state', ''))} "
            f"sender={q(get('sender', ''))} recipient={q(get('recipient', ''))} "
            f"client={r(get('client_address', ''))} queue_id={q(get('queue_id', ''))}"
            f"{counted} reply={r(verdict.action)}",
        )

    async def reload(self) -> bool:
        """Load the rules file again; on any error keep the current rules and say why."""
        if self.rules_path is None:
            return False
        try:
            rules = await asyncio.to_thread(load_rules, self.rules_path)
        except RulesError as exc:
            self.reloads["failed"] += 1
            log.error("event=reload_failed keeping=previous_rules error=%s", _logfmt_value(exc))
            return False
        before, self.rules = self.rules, rules  # atomic: requests hold their own reference
        freeze_heap()
        self.reloads["ok"] += 1
        log.info(
            "event=rules_reloaded customers=%d logins=%d", len(rules.customers), len(rules.by_login)
        )
        self._spawn(self.announce_status(rules))
        self._spawn(self.resume(days_moved(before, rules, self.clock())))
        return True

    # ---- notices off the charge path ---------------------------------------------------

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, notice: Notice | None, kind: str, customer: str) -> None:
        if notice is None:  # policy.json of an older compiler: no template for this kind
            log.warning("event=notice_not_sent kind=%s customer=%s why=no_template", kind, customer)
            return
        self.notifier.submit(notice)

    async def announce_status(self, rules: Rules) -> None:
        """Suspension/termination notices for the status changes the store had not seen."""
        statuses = {cid: c.status for cid, c in rules.customers.items()}
        try:
            previous = await self.store.swap_statuses(statuses)
        except StoreError as exc:
            log.error("event=status_notices_skipped error=%s", _logfmt_value(exc))
            return
        for customer, kind in status_notices(previous, rules):
            notice = render(kind, customer, rules, self.clock(), status_values(customer))
            self._send(notice, kind, customer.id)

    async def roll_days(self, since: datetime, until: datetime) -> None:
        """`resumed` for each customer whose local day began in (since, until] after a
        day that reached its limit."""
        await self.resume(days_started(self.rules, since, until))

    async def resume(self, started: Iterable[tuple[Customer, date]]) -> None:
        """`resumed` for each (customer, day begun) whose previous day reached its limit,
        claimed once in the store (several daemons share it)."""
        rules = self.rules
        for customer, day in list(started):
            hit = await self.store.claimed(customer.id, day - timedelta(days=1), "limit")
            if hit and await self.store.claim(customer.id, day, "resumed"):
                values = resumed_values(customer, day)
                notice = render("resumed", customer, rules, self.clock(), values, day=day)
                self._send(notice, "resumed", customer.id)

    async def drain_outbox(self) -> int:
        """Send the notice requests queued in the store; returns how many were taken."""
        taken = await self.store.take_outbox(OUTBOX_BATCH)
        for text in taken:
            try:
                request = NoticeRequest.from_json(text)
                notice = render_request(request, self.rules, self.clock())
            except NoticeError as exc:
                log.error("event=notice_refused error=%s", _logfmt_value(exc))
                continue
            self._send(notice, request.kind, request.customer)
        return len(taken)

    async def notice_loop(self) -> None:
        """Poll the outbox every OUTBOX_INTERVAL, look for new local days every ROLL_INTERVAL."""
        loop = asyncio.get_running_loop()
        last = self.clock()
        next_roll = loop.time() + ROLL_INTERVAL
        while True:
            try:
                await self.drain_outbox()
                if loop.time() >= next_roll:
                    now = self.clock()
                    await self.roll_days(last, now)
                    last, next_roll = now, loop.time() + ROLL_INTERVAL
            except Exception:  # a bug here must not end notices for the daemon's lifetime
                log.exception("event=notice_loop_error")
            await asyncio.sleep(OUTBOX_INTERVAL)

    async def close_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# ---- listening ---------------------------------------------------------------------------


def split_host_port(spec: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as (host, port), None if it is not that."""
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Listen:
    """``unix:PATH`` or ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""

    path: Path | None = None
    host: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Listen:
        if spec.startswith("unix:"):
            return cls(path=Path(spec[5:]))
        host_port = split_host_port(spec)
        if host_port is None:
            raise ValueError(f"expected unix:PATH or HOST:PORT, got {spec!r}")
        return cls(host=host_port[0], port=host_port[1])

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


async def start_listener(
    listen: Listen, factory: Callable[[], asyncio.Protocol], *, socket_mode: int
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    if listen.path is not None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(listen.path).st_mode):
                os.unlink(listen.path)  # a stale socket from a previous run
        server = await loop.create_unix_server(factory, str(listen.path), backlog=1024)
        os.chmod(listen.path, socket_mode)
        return server
    assert listen.port is not None
    return await loop.create_server(
        factory, listen.host, listen.port, backlog=1024, reuse_address=True
    )


def freeze_heap() -> None:
    """Move what is alive now (modules, rules, indexes) out of the cyclic GC's sight.

    The request path allocates only short-lived objects; without this a full
    collection walks every rule object again and shows up as a latency spike.
    """
    gc.collect()
    gc.freeze()


def raise_fd_limit() -> None:
    """Serve hundreds of persistent connections: soft RLIMIT_NOFILE up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def run(
    server: PolicyServer,
    listen: Listen,
    *,
    socket_mode: int = 0o660,
    listening: Callable[[], object] | None = None,
    milter: Listen | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; the store and notifier are started here and closed after.

    `listening()` runs once the policy socket listens (the CLI starts the metrics server
    there: metrics.py reads the server, so the server does not import it).

    With `milter`, the message checks (docs/milter.md) listen there too, in this process:
    they read the same rules and follow the same SIGHUP reloads.
    """
    loop = asyncio.get_running_loop()
    raise_fd_limit()
    await server.store.start()
    if server.suppressions is not None:
        await server.suppressions.start()
    server.notifier.start()
    freeze_heap()
    listener = await start_listener(
        listen,
        lambda: PolicyConnection(server.handle, server.stats, server.connections),
        socket_mode=socket_mode,
    )
    milter_listener = None
    if milter is not None:
        milter_listener = await start_listener(
            milter, server.milter_connection, socket_mode=socket_mode
        )
    if listening is not None:
        listening()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()

    def on_hup() -> None:
        task = loop.create_task(server.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def on_sweep() -> None:
        sweep(server.connections, loop.time(), server.stats)
        sweeper[0] = loop.call_later(SWEEP_INTERVAL, on_sweep)

    sweeper = [loop.call_later(SWEEP_INTERVAL, on_sweep)]
    server._spawn(server.notice_loop())
    server._spawn(server.announce_status(server.rules))
    log.info(
        "event=listening listen=%s milter=%s store=%s customers=%d logins=%d on_store_error=%s",
        listen,
        milter or "-",
        server.store.description,
        len(server.rules.customers),
        len(server.rules.by_login),
        "dunno" if server.fail_open else "defer",
    )
    if ready is not None:
        ready()
    try:
        await stop.wait()
    finally:
        log.info("event=stopping connections=%d", len(server.connections))
        sweeper[0].cancel()
        listener.close()
        if milter_listener is not None:
            milter_listener.close()
        for conn in list(server.connections):
            conn.close()
        for milter_conn in list(server.milter_connections):
            milter_conn.close()
        await listener.wait_closed()
        if milter_listener is not None:
            await milter_listener.wait_closed()
        await server.close_tasks()
        await server.notifier.close()
        await server.store.close()
        if server.suppressions is not None:
            await server.suppressions.close()
        for where in (listen, milter):
            if where is not None and where.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(where.path)
        log.info("event=stopped")
