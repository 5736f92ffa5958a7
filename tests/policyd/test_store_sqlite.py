"""The SQLite store's back-pressure, in process: a lagging writer costs latency, never a tempfail;
a writer that makes no progress for max_wait is an outage (tempfail, never fail open)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from relayops.policyd.notify import Notifier
from relayops.policyd.protocol import PolicyConnection
from relayops.policyd.rules import Charge, ChargeStatus, Outcome, parse_rules
from relayops.policyd.server import PolicyServer
from relayops.policyd.store import UNAVAILABLE
from relayops.policyd.store_sqlite import SqliteStore
from support.policyd import encode, request, rules_data

DEFER = "DEFER_IF_PERMIT 4.3.0 quota service temporarily unavailable, try again later"


class SlowCommit(sqlite3.Connection):
    """A disk whose commit (fsync) takes `delay` seconds, 100 times the usual."""

    delay = 0.2
    commits = 0

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql == "COMMIT":
            time.sleep(self.delay)  # releases the GIL, as an fsync does
            type(self).commits += 1
        return super().execute(sql, parameters)


class StuckCommit(sqlite3.Connection):
    """A commit that makes no progress until `release` is set."""

    release = threading.Event()

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql == "COMMIT":
            self.release.wait(30)
        return super().execute(sql, parameters)


def stored(db: Path, customer: str) -> int:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT sum(count) FROM counters WHERE customer = ?", (customer,))
        return int(rows.fetchone()[0] or 0)
    finally:
        conn.close()


async def drive(port: int, requests: list[bytes], connections: int) -> list[tuple[float, str]]:
    """Send each request once over persistent connections, one in flight each, as smtpd does."""

    async def one(share: list[bytes]) -> list[tuple[float, str]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        out = []
        for payload in share:
            t0 = time.monotonic()
            writer.write(payload)
            answer = await reader.readuntil(b"\n\n")
            out.append((time.monotonic() - t0, answer[:-2].decode().removeprefix("action=")))
        writer.close()
        return out

    shares = [requests[i::connections] for i in range(connections)]
    results = await asyncio.gather(*(one(s) for s in shares))
    return [x for r in results for x in r]


def test_a_lagging_writer_costs_latency_never_a_tempfail(tmp_path: Path) -> None:
    """Every commit takes 200 ms (a slow fsync): requests wait for room, none is refused."""
    db = tmp_path / "counters.sqlite"
    rules = parse_rules(rules_data(acme={"daily_quota": 2500}))
    SlowCommit.commits = 0
    store = SqliteStore(db, connection_factory=SlowCommit)
    outages: list[bool] = []

    async def main() -> list[tuple[float, str]]:
        server = PolicyServer(
            rules=rules, rules_path=None, store=store, notifier=Notifier(None), fail_open=False
        )
        await store.start()
        server.notifier.start()
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(
            lambda: PolicyConnection(server.handle, server.stats, server.connections),
            "127.0.0.1",
            0,
        )
        port = listener.sockets[0].getsockname()[1]

        def watch() -> None:
            outages.append(store.outage)
            watcher[0] = loop.call_later(0.01, watch)

        watcher = [loop.call_later(0.01, watch)]
        requests = [encode(request(recipient=f"r{i}@example.org")) for i in range(3000)]
        try:
            return await drive(port, requests, connections=8)
        finally:
            watcher[0].cancel()
            listener.close()
            await server.notifier.close(grace=0.1)
            await store.close()

    answers = asyncio.run(main())
    actions = [a for _, a in answers]
    assert DEFER not in actions
    assert actions.count("DUNNO") == 2500
    assert (
        actions.count(
            "452 4.7.1 daily quota of 2500 reached for acme; sending resumes at 00:00 Europe/Paris"
        )
        == 500
    )
    latencies = sorted(t for t, _ in answers)
    # The lag was felt (requests waited for the writer), within the bound.
    assert latencies[-1] >= 0.1, latencies[-10:]
    assert latencies[-1] < store.max_wait, latencies[-10:]
    assert SlowCommit.commits >= 3
    assert not any(outages)
    assert stored(db, "acme") == 2500


def _charge(limit: int, cid: str = "acme") -> Charge:
    tiny = {"daily_quota": 1, "logins": ["tiny-app"], "domains": ["tiny.example"]}
    rules = parse_rules(rules_data(tiny=tiny, acme={"daily_quota": limit}))
    customer = rules.customers[cid]
    limit = customer.daily_quota
    return Charge(customer, datetime.now(UTC).date(), limit, limit)


def test_a_writer_making_no_progress_for_max_wait_is_an_outage(tmp_path: Path) -> None:
    db = tmp_path / "counters.sqlite"
    StuckCommit.release.clear()
    store = SqliteStore(db, max_unflushed=10, max_wait=0.3, connection_factory=StuckCommit)
    acme, tiny = _charge(10**6), _charge(1, "tiny")

    async def main() -> None:
        await store.start()
        loop = asyncio.get_running_loop()
        try:
            # The loss window: 10 counted in memory at once while the commit is stuck.
            assert store.charge(tiny) == Outcome(ChargeStatus.ACCEPTED, 1, True, True)
            first = [store.charge(acme) for _ in range(9)]
            assert first == [Outcome(ChargeStatus.ACCEPTED, n) for n in range(1, 10)]
            # Full: the next recipient waits for the writer ...
            t0 = loop.time()
            waiting = store.charge(acme)
            assert isinstance(waiting, asyncio.Future)
            # ... while a refusal needs no room and is answered at once, exactly.
            assert store.charge(tiny) == Outcome(ChargeStatus.OVER_LIMIT, 1)
            assert not store.outage
            # No progress for max_wait: tempfail (never counted), and the store is out.
            assert await waiting == UNAVAILABLE
            assert 0.29 <= loop.time() - t0 < 0.45
            assert store.outage
            assert store.charge(acme) == UNAVAILABLE  # at once: no waiting during an outage
            assert store.charge(tiny) == Outcome(ChargeStatus.OVER_LIMIT, 1)
            # The writer gets going again: recovery by itself.
            StuckCommit.release.set()
            deadline = loop.time() + 2
            while store.outage and loop.time() < deadline:
                await asyncio.sleep(0.01)
            assert not store.outage
            again = store.charge(acme)
            assert again == Outcome(ChargeStatus.ACCEPTED, 10)
        finally:
            StuckCommit.release.set()
            await store.close()

    asyncio.run(main())
    assert stored(db, "acme") == 10  # every accepted recipient, and only those
    assert stored(db, "tiny") == 1


def test_waiting_requests_are_admitted_in_order_when_room_comes(tmp_path: Path) -> None:
    db = tmp_path / "counters.sqlite"
    StuckCommit.release.clear()
    store = SqliteStore(db, max_unflushed=4, max_wait=2.0, connection_factory=StuckCommit)
    acme = _charge(7)

    async def main() -> list[Outcome]:
        await store.start()
        try:
            now = [store.charge(acme) for _ in range(4)]
            waiting = [store.charge(acme) for _ in range(5)]
            assert all(isinstance(w, asyncio.Future) for w in waiting)
            await asyncio.sleep(0.05)
            StuckCommit.release.set()
            later = await asyncio.gather(*waiting)  # type: ignore[arg-type]
            return [*now, *later]  # type: ignore[list-item]
        finally:
            StuckCommit.release.set()
            await store.close()

    outcomes = asyncio.run(main())
    assert [o.count for o in outcomes] == [1, 2, 3, 4, 5, 6, 7, 7, 7]
    assert [o.status for o in outcomes] == [ChargeStatus.ACCEPTED] * 7 + [
        ChargeStatus.OVER_LIMIT
    ] * 2
    assert stored(db, "acme") == 7


def test_close_answers_requests_still_waiting_without_counting_them(tmp_path: Path) -> None:
    db = tmp_path / "counters.sqlite"
    StuckCommit.release.clear()
    store = SqliteStore(db, max_unflushed=2, max_wait=5.0, connection_factory=StuckCommit)
    acme = _charge(100)

    async def main() -> Outcome:
        await store.start()
        store.charge(acme)
        store.charge(acme)
        waiting = store.charge(acme)
        assert isinstance(waiting, asyncio.Future)
        threading.Timer(0.1, StuckCommit.release.set).start()
        await store.close()
        return await waiting

    assert asyncio.run(main()) == UNAVAILABLE
    assert stored(db, "acme") == 2


def test_status_swap_and_outbox_hold_the_write_lock_briefly_with_the_gil_busy(
    tmp_path: Path,
) -> None:
    """The daemon swaps every customer's status at start, under load: a statement per
    row gave the GIL up and waited for it again each time (5 ms each while the event loop
    is busy), holding the file's write lock for seconds, and the writer waited behind it
    until requests tempfailed (bench/policyd/RESULTS.md "parse"). One JSON value each way
    instead; `hog` plays the busy event loop."""

    async def main() -> tuple[dict[str, str | None], float, list[str], float]:
        store = SqliteStore(tmp_path / "c.sqlite")
        await store.start()
        try:
            statuses = {f"c{i:05d}": "active" for i in range(5000)}
            await store.swap_statuses({"c00000": "suspended"})
            conn = sqlite3.connect(tmp_path / "c.sqlite")
            conn.executemany(
                "INSERT INTO outbox (request) VALUES (?)", [(f'{{"n": {i}}}',) for i in range(150)]
            )
            conn.commit()
            conn.close()
            stop = threading.Event()
            hog = threading.Thread(target=lambda: any(stop.is_set() for _ in iter(int, 1)))
            hog.start()
            try:
                started = time.monotonic()
                before = await store.swap_statuses(statuses)
                swap = time.monotonic() - started
                started = time.monotonic()
                taken = await store.take_outbox(100)
                take = time.monotonic() - started
            finally:
                stop.set()
                hog.join()
            assert await store.take_outbox(100) == [f'{{"n": {i}}}' for i in range(100, 150)]
            return before, swap, taken, take
        finally:
            await store.close()

    before, swap, taken, take = asyncio.run(main())
    assert before == {"c00000": "suspended", **dict.fromkeys(f"c{i:05d}" for i in range(1, 5000))}
    assert taken == [f'{{"n": {i}}}' for i in range(100)]  # the oldest first
    assert swap < 2.0 and take < 2.0, (swap, take)  # 0.04 s here; a statement a row: seconds


def test_an_outbox_row_written_as_a_blob_is_taken_as_text(tmp_path: Path) -> None:
    """A request put in with the sqlite3 shell's readfile() is a BLOB: taken like any other
    row, never an error that would stop the queue behind it."""

    async def main() -> tuple[list[str], list[str]]:
        store = SqliteStore(tmp_path / "c.sqlite")
        await store.start()
        try:
            conn = sqlite3.connect(tmp_path / "c.sqlite")
            conn.execute("INSERT INTO outbox (request) VALUES (?)", (b'{"n": 1}',))
            conn.execute("INSERT INTO outbox (request) VALUES (?)", ('{"n": 2}',))
            conn.commit()
            conn.close()
            return await store.take_outbox(10), await store.take_outbox(10)
        finally:
            await store.close()

    assert asyncio.run(main()) == (['{"n": 1}', '{"n": 2}'], [])
