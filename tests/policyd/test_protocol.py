"""The policy protocol framing, in process, on a real loopback socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from relayops.policyd import protocol
from relayops.policyd.protocol import (
    INTERNAL_ERROR_ACTION,
    MALFORMED_ACTION,
    MAX_LINE,
    MAX_REQUEST,
    OVERSIZE_ACTION,
    PolicyConnection,
    Request,
    Stats,
    parse_request,
    sweep,
)
from support.policyd import encode, request


def test_parse_request_keeps_values_with_equal_signs_and_ignores_unknown_names() -> None:
    parsed = parse_request(b"request=smtpd_access_policy\nsender=a=b@x\nfuture_attr=1")
    assert parsed == {"request": "smtpd_access_policy", "sender": "a=b@x", "future_attr": "1"}


@pytest.mark.parametrize(
    "block",
    [b"", b"request=smtpd_access_policy\nno equal sign", b"request=other", b"sender=x"],
)
def test_parse_request_rejects_malformed_blocks(block: bytes) -> None:
    assert parse_request(block) is None


def test_parse_request_survives_invalid_utf8() -> None:
    parsed = parse_request(b"request=smtpd_access_policy\nsender=\xff\xfe@x")
    assert parsed is not None and parsed["sender"] == "\ufffd\ufffd@x"


class Harness:
    def __init__(self, handler: Callable[[Request], str | asyncio.Future[str]]) -> None:
        self.handler = handler
        self.stats = Stats()
        self.conns: set[PolicyConnection] = set()
        self.seen: list[Request] = []

    def handle(self, req: Request) -> str | asyncio.Future[str]:
        self.seen.append(req)
        return self.handler(req)


async def serve(harness: Harness) -> tuple[asyncio.Server, int]:
    server = await asyncio.get_running_loop().create_server(
        lambda: PolicyConnection(harness.handle, harness.stats, harness.conns), "127.0.0.1", 0
    )
    return server, server.sockets[0].getsockname()[1]


async def read_answers(reader: asyncio.StreamReader, n: int) -> list[str]:
    out = []
    for _ in range(n):
        raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
        out.append(raw.decode()[len("action=") : -2])
    return out


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_pipelined_and_fragmented_requests_are_answered_in_order() -> None:
    async def main() -> None:
        harness = Harness(lambda req: f"DUNNO {req['recipient']}")
        server, port = await serve(harness)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = b"".join(encode(request(recipient=f"r{i}@x")) for i in range(3))
        writer.write(data[:7])  # a fragment, then the rest including 3 pipelined requests
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(data[7:])
        assert await read_answers(reader, 3) == ["DUNNO r0@x", "DUNNO r1@x", "DUNNO r2@x"]
        writer.close()
        server.close()

    run(main())


def test_async_answers_keep_the_order_of_pipelined_requests() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        def slow_first(req: Request) -> str | asyncio.Future[str]:
            fut: asyncio.Future[str] = loop.create_future()
            delay = 0.05 if req["recipient"] == "r0@x" else 0.0
            loop.call_later(delay, fut.set_result, f"DUNNO {req['recipient']}")
            return fut

        harness = Harness(slow_first)
        server, port = await serve(harness)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(encode(request(recipient=f"r{i}@x")) for i in range(3)))
        assert await read_answers(reader, 3) == ["DUNNO r0@x", "DUNNO r1@x", "DUNNO r2@x"]
        writer.close()
        server.close()

    run(main())


def test_malformed_request_gets_a_tempfail_and_the_connection_goes_on() -> None:
    async def main() -> None:
        harness = Harness(lambda req: "DUNNO")
        server, port = await serve(harness)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"garbage line\n\n\nrequest=other\n\n" + encode(request()))
        assert await read_answers(reader, 4) == [
            MALFORMED_ACTION,
            MALFORMED_ACTION,  # the lone empty line
            MALFORMED_ACTION,
            "DUNNO",
        ]
        assert harness.stats.malformed == 3 and harness.stats.requests == 1
        writer.close()
        server.close()

    run(main())


@pytest.mark.parametrize(
    "payload",
    [
        b"request=smtpd_access_policy\nsender=" + b"x" * (MAX_LINE + 1),  # a line never ending
        b"request=smtpd_access_policy\n" + b"a=b\n" * (MAX_REQUEST // 4 + 1),  # no end of request
        b"request=smtpd_access_policy\nsender=" + b"x" * (MAX_LINE + 1) + b"\n\n",  # complete
    ],
)
def test_oversize_input_gets_a_tempfail_and_a_closed_connection(payload: bytes) -> None:
    async def main() -> None:
        harness = Harness(lambda req: "DUNNO")
        server, port = await serve(harness)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        assert await read_answers(reader, 1) == [OVERSIZE_ACTION]
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
        assert harness.stats.oversize == 1 and harness.seen == []
        writer.close()
        server.close()

    run(main())


def test_stuck_partial_request_and_idle_connections_are_swept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        harness = Harness(lambda req: "DUNNO")
        loop = asyncio.get_running_loop()
        server, port = await serve(harness)
        stuck_r, stuck_w = await asyncio.open_connection("127.0.0.1", port)
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
        stuck_w.write(b"request=smtpd_access_policy\n")
        await asyncio.sleep(0.05)
        now = loop.time()
        assert len(harness.conns) == 2
        (idle_conn,) = [conn for conn in harness.conns if not conn.partial]
        sweep(harness.conns, now + protocol.READ_TIMEOUT - 1, harness.stats)
        assert len(harness.conns) == 2
        assert harness.stats.timeouts == 0
        sweep(harness.conns, now + protocol.READ_TIMEOUT + 1, harness.stats)  # the partial one
        assert await asyncio.wait_for(stuck_r.read(), 5) == b""
        assert harness.stats.timeouts == 1
        # idle past READ_TIMEOUT but not IDLE_TIMEOUT, with no partial request: still open
        await asyncio.sleep(0.05)
        assert harness.conns == {idle_conn}
        assert not idle_r.at_eof()
        sweep(harness.conns, now + protocol.IDLE_TIMEOUT + 1, harness.stats)  # the idle one
        assert await asyncio.wait_for(idle_r.read(), 5) == b""
        assert harness.stats.timeouts == 2
        stuck_w.close()
        idle_w.close()
        server.close()

    run(main())


def test_a_failing_handler_costs_one_tempfail_not_the_connection() -> None:
    def flaky(req: Request) -> str:
        if req["recipient"] == "boom@x":
            raise RuntimeError("bug")
        return "DUNNO"

    async def main() -> None:
        harness = Harness(flaky)
        server, port = await serve(harness)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(encode(request(recipient="boom@x")) + encode(request(recipient="ok@x")))
        assert await read_answers(reader, 2) == [INTERNAL_ERROR_ACTION, "DUNNO"]
        writer.close()
        server.close()

    run(main())
