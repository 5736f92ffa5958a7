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
import functools
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from time import monotonic as _monotonic
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
Handler = Callable[[Mapping[str, str]], "str | asyncio.Future[str] | Deferred"]


def encode_answer(action: str) -> bytes:
    return b"action=" + action.encode("utf-8", "replace") + b"\n\n"


_DUNNO: Final = encode_answer("DUNNO")


def _answer_bytes(action: str) -> bytes:
    """The encoded answer, reusing the pre-encoded DUNNO (most answers)."""
    return _DUNNO if action == "DUNNO" else encode_answer(action)


# Every byte but "\n" and "=": what `_well_formed` deletes to see the lines' framing.
_NOT_FRAMING: Final = bytes(b for b in range(256) if b not in b"\n=")
_POSTFIX_FIRST: Final = "request=smtpd_access_policy\n"  # how Postfix begins each request
_EQUALS: Final = itertools.repeat("=")
_ONCE: Final = itertools.repeat(1)


@functools.lru_cache(maxsize=256)  # the daemon's few names; bounded all the same
def _needle(name: str) -> str | None:
    """What begins the line of attribute `name`; None if no attribute can have that name."""
    if "=" in name or "\n" in name:
        return None
    return "\n" + name + "="


class Request(Mapping[str, str]):
    """The attributes of one request, looked up in its text when asked for.

    A daemon reads 4-6 of the ~30 attributes Postfix sends: finding those in the
    text costs less than building the whole dict (bench/policyd/RESULTS.md "parse"),
    which is built only if the request is iterated. A value is what follows the first
    "=" of its line. Postfix never repeats a name; of a repeated one the first counts
    (so does the dict: one reading, whichever way the request is read).
    """

    __slots__ = ("_all", "_text")

    def __init__(self, text: str) -> None:
        self._text = "\n" + text + "\n"  # each attribute is "\n" + name + "=" + value + "\n"
        self._all: dict[str, str] | None = None

    def get(self, name: str, default: Any = None) -> Any:
        needle = _needle(name)
        if needle is None:
            return default
        text = self._text
        at = text.find(needle)
        if at < 0:
            return default
        start = at + len(needle)
        return text[start : text.find("\n", start)]

    def __getitem__(self, name: str) -> str:
        value: str | None = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def _attrs(self) -> dict[str, str]:
        if self._all is None:
            attrs: dict[str, str] = {}
            for name, value in map(str.split, self._text[1:-1].split("\n"), _EQUALS, _ONCE):
                attrs.setdefault(name, value)
            self._all = attrs
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._attrs())

    def __len__(self) -> int:
        return len(self._attrs())

    def __repr__(self) -> str:
        return f"Request({self._attrs()!r})"


def _well_formed(block: bytes) -> bool:
    """Every line of `block` has an "=" (none is empty). Checked on the bytes: in UTF-8
    neither byte is ever part of another character."""
    marks = block.translate(None, _NOT_FRAMING)  # the "\n"s and "="s, in order
    return bool(marks) and marks[0] != 0x0A and marks[-1] != 0x0A and b"\n\n" not in marks


def parse_request(block: bytes) -> Request | None:
    """Attributes of one request (without its empty line), None if malformed.

    Bytes that are not UTF-8 are replaced (U+FFFD): values are compared and
    logged, never passed on.
    """
    if not _well_formed(block):
        return None
    text = block.decode("utf-8", "replace")
    request = Request(text)
    if not text.startswith(_POSTFIX_FIRST) and request.get("request") != "smtpd_access_policy":
        return None
    return request


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
        self.last_read = _monotonic()  # the loop's time(), without finding the loop
        if not self._buf and not self._busy and data.endswith(b"\n\n") and len(data) <= MAX_LINE:
            # The usual read: one whole request (Postfix waits for each answer), answered
            # without the buffer. What does not parse here (malformed, or pipelined
            # requests: an empty line inside) takes the buffered way, which frames it.
            request = parse_request(data[:-2])
            if request is not None:
                self._answer(request)
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
        self._answer(request)

    def _answer(self, request: Request) -> None:
        """Answer a parsed request, or start waiting for its answer."""
        self._stats.requests += 1
        try:
            answer = self._handler(request)
        except Exception:  # a bug must cost one tempfail, not the connection
            log.exception("event=handler_error peer=%s", self.peer)
            answer = INTERNAL_ERROR_ACTION
        if isinstance(answer, str):
            transport = self._transport
            if transport is not None and not self._closed:
                transport.write(_DUNNO if answer == "DUNNO" else encode_answer(answer))
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
