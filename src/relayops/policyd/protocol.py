"""Postfix SMTP access policy delegation protocol (SMTPD_POLICY_README), server side.

A request is ``name=value`` lines ended by an empty line; the answer is
``action=...`` and an empty line. Postfix keeps a connection open and sends the
next request after reading the answer; we still answer pipelined requests in
order. Written on asyncio.Protocol rather than streams: no task per connection
or per request, which is most of the cost of a daemon this simple.

Limits: a line longer than MAX_LINE or a request larger than MAX_REQUEST
(bytes) gets a tempfail answer and the connection is closed (there is no way
back into step with such a peer). A request whose lines are not all
``name=value``, or that is not ``request=smtpd_access_policy``, gets a tempfail
answer and the connection goes on. A connection with a partial request for
more than READ_TIMEOUT seconds, or idle for more than IDLE_TIMEOUT, is closed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger("relayops.policyd.protocol")

# Postfix's own attribute values are short (addresses are at most 256 octets,
# RFC 5321 4.5.3.1.3; a certificate subject is longer); 8 KiB per line and
# 64 KiB per request leave ample room and bound memory per connection.
MAX_LINE: Final = 8192
MAX_REQUEST: Final = 65536
READ_TIMEOUT: Final = 30.0
IDLE_TIMEOUT: Final = 600.0

MALFORMED_ACTION: Final = "DEFER_IF_PERMIT 4.3.5 policy request malformed"
OVERSIZE_ACTION: Final = "DEFER_IF_PERMIT 4.3.5 policy request too large"
INTERNAL_ERROR_ACTION: Final = "DEFER_IF_PERMIT 4.3.0 policy service internal error"

Request = dict[str, str]


@dataclass(frozen=True, slots=True)
class Deferred:
    """An answer that waits for `future` (a store's): the action is `then(its result)`.

    What a handler returns instead of chaining a Future[str] onto the store's
    future: that chain costs a second future and a second pass of the event loop
    per request before the answer goes out (a third of the Redis path's loop passes).
    """

    future: asyncio.Future[Any]
    then: Callable[[Any], str]


# A handler answers with the action text at once, or with a future of it (or a Deferred).
Handler = Callable[[Request], "str | asyncio.Future[str] | Deferred"]


def encode_answer(action: str) -> bytes:
    return b"action=" + action.encode("utf-8", "replace") + b"\n\n"


_DUNNO: Final = encode_answer("DUNNO")


def _answer_bytes(action: str) -> bytes:
    """The encoded answer, reusing the pre-encoded DUNNO (most answers)."""
    return _DUNNO if action == "DUNNO" else encode_answer(action)


_EQUALS: Final = itertools.repeat("=")
_ONCE: Final = itertools.repeat(1)


def parse_request(block: bytes) -> Request | None:
    """Attributes of one request (without its empty line), None if malformed.

    Bytes that are not UTF-8 are replaced (U+FFFD): values are compared and
    logged, never passed on. A repeated name keeps its last value.
    """
    if not block:
        return None
    text = block.decode("utf-8", "replace")
    try:  # str.split mapped in C, no Python frame per line
        attrs = dict(map(str.split, text.split("\n"), _EQUALS, _ONCE))
    except ValueError:  # a line without '='
        return None
    if attrs.get("request") != "smtpd_access_policy":
        return None
    return attrs


class Stats:
    """Plain counters the metrics collector reads (no locking on the hot path)."""

    def __init__(self) -> None:
        self.connections = 0
        self.connections_total = 0
        self.requests = 0
        self.malformed = 0
        self.oversize = 0
        self.timeouts = 0


class PolicyConnection(asyncio.Protocol):
    """One client connection; `handler` decides, this class only frames."""

    def __init__(self, handler: Handler, stats: Stats, registry: set[PolicyConnection]) -> None:
        self._handler = handler
        self._stats = stats
        self._registry = registry
        self._buf = bytearray()
        self._busy = False
        self._closed = False
        self._transport: asyncio.Transport | None = None
        self._logged_malformed = False
        self._then: Callable[[Any], str] | None = None  # of the Deferred being waited for
        self.peer = "?"
        self.last_read = 0.0

    # asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._registry.add(self)
        self._stats.connections += 1
        self._stats.connections_total += 1
        self.peer = str(transport.get_extra_info("peername") or "unix")
        self.last_read = asyncio.get_running_loop().time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._registry.discard(self)
        self._stats.connections -= 1

    def data_received(self, data: bytes) -> None:
        self.last_read = asyncio.get_running_loop().time()
        if (
            not self._buf
            and not self._busy
            and data[:1] != b"\n"
            and data.find(b"\n\n") == len(data) - 2
        ):
            # The usual read: exactly one whole request (Postfix waits for each answer).
            # Answered without going through the buffer: the same checks as _drain.
            self._one(data[:-2])
            return
        self._buf += data
        if not self._busy:
            self._drain()
        elif len(self._buf) > 2 * MAX_REQUEST:  # pipelining far ahead of our answers
            self._oversize()

    def eof_received(self) -> bool | None:
        return None  # close

    # framing -------------------------------------------------------------------------

    @property
    def partial(self) -> bool:
        """True while part of a request is waiting for the rest."""
        return bool(self._buf) and not self._busy

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()

    def _drain(self) -> None:
        buf = self._buf
        while buf and not self._closed:
            if buf[0] == 0x0A:  # an empty request (a lone empty line)
                del buf[:1]
                self._malformed(b"")
                continue
            end = buf.find(b"\n\n")
            if end < 0:
                last_line = len(buf) - buf.rfind(b"\n") - 1
                if len(buf) > MAX_REQUEST or last_line > MAX_LINE:
                    self._oversize()
                return
            if end > MAX_REQUEST:
                self._oversize()
                return
            block = bytes(buf[:end])
            del buf[: end + 2]
            self._one(block)
            if self._busy:
                return

    def _one(self, block: bytes) -> None:
        """Answer one request (`block` without its empty line), or start waiting for it."""
        end = len(block)
        if end > MAX_REQUEST:
            self._oversize()
            return
        if end > MAX_LINE and max(map(len, block.split(b"\n"))) > MAX_LINE:
            self._oversize()
            return
        request = parse_request(block)
        if request is None:
            self._malformed(block)
            return
        self._stats.requests += 1
        try:
            answer = self._handler(request)
        except Exception:  # a bug must cost one tempfail, not the connection
            log.exception("event=handler_error peer=%s", self.peer)
            answer = INTERNAL_ERROR_ACTION
        if isinstance(answer, str):
            self._write(_answer_bytes(answer))
        elif isinstance(answer, Deferred):
            self._busy = True
            self._then = answer.then
            answer.future.add_done_callback(self._answered)
        else:
            self._busy = True
            self._then = None
            answer.add_done_callback(self._answered)

    def _answered(self, fut: asyncio.Future[Any]) -> None:
        self._busy = False
        if self._closed:
            return
        if fut.cancelled() or fut.exception() is not None:
            error = None if fut.cancelled() else fut.exception()
            log.error("event=handler_error peer=%s error=%r", self.peer, error)
            self._write(encode_answer(INTERNAL_ERROR_ACTION))
        else:
            action = fut.result()
            if self._then is not None:
                try:
                    action = self._then(action)
                except Exception:  # as in _one: a bug costs one tempfail
                    log.exception("event=handler_error peer=%s", self.peer)
                    action = INTERNAL_ERROR_ACTION
            self._write(_answer_bytes(action))
        self._drain()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(data)

    def _malformed(self, block: bytes) -> None:
        self._stats.malformed += 1
        if not self._logged_malformed:  # once per connection: a broken client floods
            self._logged_malformed = True
            log.warning(
                "event=malformed_request peer=%s bytes=%d start=%r",
                self.peer,
                len(block),
                block[:80],
            )
        self._write(encode_answer(MALFORMED_ACTION))

    def _oversize(self) -> None:
        self._stats.oversize += 1
        log.warning(
            "event=oversize_request peer=%s buffered=%d max_line=%d max_request=%d",
            self.peer,
            len(self._buf),
            MAX_LINE,
            MAX_REQUEST,
        )
        self._buf.clear()
        self._write(encode_answer(OVERSIZE_ACTION))
        self.close()
        self._closed = True


def sweep(connections: set[PolicyConnection], now: float, stats: Stats) -> None:
    """Close connections stuck on a partial request or idle for too long."""
    for conn in list(connections):
        idle = now - conn.last_read
        if (conn.partial and idle > READ_TIMEOUT) or idle > IDLE_TIMEOUT:
            stats.timeouts += 1
            log.info("event=connection_timeout peer=%s idle_seconds=%.0f", conn.peer, idle)
            conn.close()
