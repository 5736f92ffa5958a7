"""Pauses from slow-down deferrals, kept in SQLite, answered to Postfix over socketmap."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.backoff.pauses import Pause, PauseBook
from relayops.backoff.socketmap import (
    Answerer,
    NetstringError,
    class_table,
    netstring,
    parse_netstring,
    serve,
)
from relayops.backoff.watch import pauses_from
from relayops.lab import receivers
from relayops.warmup.deliveries import Delivery
from support.processes import free_port

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()
TSS04 = receivers.reply(receivers.VOLUME_DEFERRAL, ip="198.18.0.111")
TRANSPORT = (
    "# managed by relayops\ngmail.com isp-gmail:\nyahoo.com isp-yahoo:\nymail.com isp-yahoo:\n"
)
INSTANCE = "postfix-ip-dedicated-1"


def delivery(isp: str, status: str, reply: str, at: float = T0) -> Delivery:
    when = datetime.fromtimestamp(at, UTC)
    return Delivery(when, "dedicated-1", isp, f"{isp}.com", status, "4.7.0", reply)  # type: ignore[arg-type]


def test_only_slow_down_deferrals_of_a_class_pause() -> None:
    found = list(
        pauses_from(
            [
                delivery("yahoo", "deferred", TSS04),
                delivery("gmail", "deferred", "450 4.2.1 mailbox busy"),
                delivery("other", "deferred", TSS04),
                delivery("yahoo", "bounced", TSS04),
            ],
            pause_seconds=600,
        )
    )
    assert found == [Pause("ip-dedicated-1", "yahoo", T0, T0 + 600, "yahoo-tss", TSS04)]


@pytest.fixture
def book(tmp_path: Path) -> Iterator[PauseBook]:
    found = PauseBook(tmp_path / "pauses.sqlite")
    yield found
    found.close()


def test_a_pause_is_extended_never_shortened_and_ends_by_itself(book: PauseBook) -> None:
    first = Pause("ip-dedicated-1", "yahoo", T0, T0 + 600, "yahoo-tss", TSS04)
    assert book.pause(first) is True
    shorter = Pause("ip-dedicated-1", "yahoo", T0 + 10, T0 + 300, "rate-limit", "x")
    assert book.pause(shorter) is False
    assert book.lookup("ip-dedicated-1", "yahoo", now=T0 + 599.9) is not None
    assert book.lookup("ip-dedicated-1", "yahoo", now=T0 + 600) is None
    assert book.lookup("ip-dedicated-1", "gmail", now=T0) is None
    longer = Pause("ip-dedicated-1", "yahoo", T0 + 500, T0 + 1100, "yahoo-tss", "y")
    assert book.pause(longer) is False
    found = book.lookup("ip-dedicated-1", "yahoo", now=T0 + 1000)
    assert found is not None and (found.since, found.until) == (T0, T0 + 1100)
    assert [p.isp_class for p in book.active(now=T0 + 1000)] == ["yahoo"]
    assert book.active(now=T0 + 1100) == []


def test_netstrings() -> None:
    assert netstring("OK retry:x") == b"10:OK retry:x,"
    assert parse_netstring(b"3:abc,4:") == ("abc", b"4:")
    assert parse_netstring(b"3:ab") is None
    assert parse_netstring(b"12") is None
    for bad in (b"3:abcd", b"x:abc,", b"99999999999:", b"abc"):
        with pytest.raises(NetstringError):
            parse_netstring(bad)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_netstring_error(data: bytes) -> None:
    with contextlib.suppress(NetstringError):
        parse_netstring(data)


def test_class_table_reads_the_instance_transport_table() -> None:
    assert class_table(TRANSPORT) == {
        "gmail.com": "gmail",
        "yahoo.com": "yahoo",
        "ymail.com": "yahoo",
    }


def _answerer(tmp_path: Path, book: PauseBook, now: list[float]) -> Answerer:
    (tmp_path / "etc" / INSTANCE).mkdir(parents=True)
    (tmp_path / "etc" / INSTANCE / "transport").write_text(TRANSPORT)
    return Answerer(book, tmp_path / "etc", clock=lambda: now[0])


PAUSED = (
    "OK retry:4.7.0 relayops paused yahoo for ip-dedicated-1 until 10:10:00 UTC after the "
    "receiver asked to slow down (yahoo-tss)"
)


def test_answers_per_domain_class_and_time(tmp_path: Path, book: PauseBook) -> None:
    now = [T0]
    answer = _answerer(tmp_path, book, now).answer
    book.pause(Pause("ip-dedicated-1", "yahoo", T0, T0 + 600, "yahoo-tss", TSS04))
    assert answer(f"{INSTANCE} yahoo.com") == PAUSED
    assert answer(f"{INSTANCE} YMAIL.com") == PAUSED
    assert answer(f"{INSTANCE} someone@yahoo.com") == PAUSED  # Postfix sends the address
    assert answer(f"{INSTANCE} gmail.com") == "NOTFOUND "  # another class keeps flowing
    assert answer("postfix-ip-dedicated-2 yahoo.com") == "NOTFOUND "  # another IP too
    assert answer(f"{INSTANCE} isp.lab") == "NOTFOUND "
    assert answer("../etc yahoo.com") == "NOTFOUND "
    now[0] = T0 + 600
    assert answer(f"{INSTANCE} yahoo.com") == "NOTFOUND "  # lifted by itself


def test_any_request_text_is_answered_and_only_a_paused_class_holds_mail(
    tmp_path: Path, book: PauseBook
) -> None:
    """Whatever arrives on the socketmap (it is a network listener), the answer is
    NOTFOUND unless the request names this instance and a domain of the paused class."""
    now = [T0]
    answer = _answerer(tmp_path, book, now).answer
    book.pause(Pause("ip-dedicated-1", "yahoo", T0, T0 + 600, "yahoo-tss", TSS04))

    @given(st.text(max_size=120))
    def check(request: str) -> None:
        name, _, key = request.partition(" ")
        domain = key.rpartition("@")[2].lower().rstrip(".")
        held = name == INSTANCE and domain in {"yahoo.com", "ymail.com"}
        assert answer(request) == (PAUSED if held else "NOTFOUND ")

    check()


@pytest.mark.real
def test_postfix_asks_the_socketmap(tmp_path: Path, book: PauseBook) -> None:
    """Postfix's own socketmap client (postmap -q) against the server on loopback."""
    now = [datetime.now(UTC).timestamp()]
    answerer = _answerer(tmp_path, book, now)
    book.pause(Pause("ip-dedicated-1", "yahoo", now[0], now[0] + 600, "yahoo-tss", TSS04))
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def run() -> None:
        server = await serve(answerer, "127.0.0.1", port)
        started.set()
        async with server:
            await server.serve_forever()

    def main() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(run())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert started.wait(5)
    table = f"socketmap:inet:127.0.0.1:{port}:{INSTANCE}"
    config = tmp_path / "postfix"  # postmap reads a main.cf; Postfix's defaults suffice
    config.mkdir()
    (config / "main.cf").write_text("")
    try:
        paused = subprocess.run(
            ["postmap", "-c", str(config), "-q", "yahoo.com", table],
            capture_output=True,
            text=True,
            timeout=10,
        )
        until = datetime.fromtimestamp(now[0] + 600, UTC).strftime("%H:%M:%S")
        assert (paused.returncode, paused.stdout) == (
            0,
            f"retry:4.7.0 relayops paused yahoo for ip-dedicated-1 until {until} UTC after the "
            "receiver asked to slow down (yahoo-tss)\n",
        )
        flowing = subprocess.run(
            ["postmap", "-c", str(config), "-q", "gmail.com", table],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert (flowing.returncode, flowing.stdout) == (1, "")  # not found
    finally:
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(5)
