"""A minimal pipelined Redis client on asyncio.Protocol, for the daemon's hot path only.

Hand-written on purpose: redis-py's asyncio client costs about 300 µs of
Python per call here (connection-pool lock, task per call, stream reader),
measured with bench/policyd at 1 connection, which is most of a request's
budget. This speaks just enough RESP2 (https://redis.io/docs/reference/protocol-spec/)
for AUTH, SELECT, ROLE, SENTINEL, SCRIPT LOAD, EVALSHA and WAIT: commands are
written as they come, each gets a future, replies resolve them in order (so
EVALSHA + WAIT go out back to back, one round trip). TLS is asyncio's own
(an ssl.SSLContext on the transport). Everything else (tools, tests) uses redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass

from relayops.policyd.redis_url import Endpoint


@dataclass(frozen=True)
class ReplyError:
    """A ``-ERR ...`` reply (a value, not an exception: the caller decides)."""

    message: str


def encode_command(*args: bytes | str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    pass


def _parse(buf: bytearray, pos: int) -> tuple[object, int]:
    """One reply starting at `pos`; raises _Incomplete when more bytes are needed."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos], bytes(buf[pos + 1 : end])
    pos = end + 2
    if kind == 0x3A:  # ':' integer
        return int(line), pos
    if kind == 0x2B:  # '+' simple string
        return line, pos
    if kind == 0x2D:  # '-' error
        return ReplyError(line.decode(errors="replace")), pos
    if kind == 0x24:  # '$' bulk string
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise _Incomplete
        return bytes(buf[pos : pos + n]), pos + n + 2
    if kind == 0x2A:  # '*' array
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            item, pos = _parse(buf, pos)
            items.append(item)
        return items, pos
    raise ValueError(f"not a RESP reply: {bytes(buf[pos - len(line) - 3 : pos])!r}")


class RespConnection(asyncio.Protocol):
    """One connection; `call()` pipelines, replies resolve futures in order."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._waiting: deque[asyncio.Future[object]] = deque()
        self._transport: asyncio.Transport | None = None
        self.closed = False

    @classmethod
    async def open(
        cls,
        endpoint: Endpoint,
        *,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
    ) -> RespConnection:
        """Connect (TLS: chain and server name verified), AUTH, SELECT, all within `timeout`.

        Raises OSError (ssl.SSLError included) or TimeoutError; a refused AUTH is a
        ConnectionError carrying Redis's reply (WRONGPASS, NOAUTH…, never the password).
        """
        loop = asyncio.get_running_loop()
        server_name = endpoint.host if tls is not None else None
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                cls, endpoint.host, endpoint.port, ssl=tls, server_hostname=server_name
            ),
            timeout,
        )
        setup = []
        if password is not None:
            auth = (username, password) if username else (password,)
            setup.append(conn.call(b"AUTH", *auth))
        if db:
            setup.append(conn.call(b"SELECT", db))
        try:
            replies = await asyncio.wait_for(asyncio.gather(*setup), timeout)
        except BaseException:
            conn.close()
            raise
        for reply in replies:
            if isinstance(reply, ReplyError):
                conn.close()
                raise ConnectionError(f"{endpoint} refused the connection set-up: {reply.message}")
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = ConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}")
        while self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(error)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        pos = 0
        try:
            while pos < len(self._buf):
                reply, pos = _parse(self._buf, pos)
                fut = self._waiting.popleft()
                if not fut.done():
                    fut.set_result(reply)
        except _Incomplete:
            pass
        except (ValueError, IndexError):  # garbage or an unexpected reply: unusable
            self.close()
            return
        del self._buf[:pos]

    def call(self, *args: bytes | str | int) -> asyncio.Future[object]:
        return self.call_encoded(encode_command(*args))

    def call_encoded(self, command: bytes) -> asyncio.Future[object]:
        """`call` for a command the caller has RESP-encoded itself (the hot path's EVALSHA,
        built from per-day fragments)."""
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.closed or self._transport is None:
            fut.set_exception(ConnectionError("connection to Redis is closed"))
            return fut
        self._waiting.append(fut)
        self._transport.write(command)
        return fut

    def close(self) -> None:
        """Drop the connection; pending calls fail with ConnectionError."""
        if self._transport is not None and not self.closed:
            self._transport.abort()
