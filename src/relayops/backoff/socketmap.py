"""The pauses as a Postfix `socketmap` table the output instances' transport_maps ask.

Postfix asks `socketmap:inet:127.0.0.1:PORT:<instance>` with the recipient address
(socketmap_table(5): netstring requests `<name> <key>`, netstring replies
`OK <value>`, `NOTFOUND `, `TEMP <reason>`). While the sending IP of `<instance>` is
paused for the domain's ISP class the answer is `OK retry:4.7.0 <why>`: the retry(8)
service defers the recipients with that reason and the queue manager tries them again
later, so mail waits in the relay's queue and nothing is lost; once the pause ends the
answer is NOTFOUND and the instance's own transport table applies again. Domains come
from the instance's transport table (`/etc/<instance>/transport`: domain -> `isp-<class>:`).

The netstring codec is hand-written (ten lines; no kept library speaks socketmap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from relayops.backoff.names import CLASS_PREFIX, INSTANCE_PREFIX
from relayops.backoff.pauses import PauseBook

MAX_REQUEST = 10_000  # socketmap_table(5): the client's socketmap_max_reply_size default


class NetstringError(ValueError):
    """Not a netstring (length, colon, data, comma)."""


def netstring(data: str) -> bytes:
    raw = data.encode("utf-8")
    return str(len(raw)).encode() + b":" + raw + b","


def parse_netstring(buffer: bytes) -> tuple[str, bytes] | None:
    """(the first netstring's text, the rest), None if incomplete; NetstringError if bad."""
    colon = buffer.find(b":")
    if colon < 0:
        if len(buffer) > 10 or (buffer and not buffer.isdigit()):
            raise NetstringError("no length")
        return None
    length_text = buffer[:colon]
    if not length_text.isdigit() or len(length_text) > 10:
        raise NetstringError("bad length")
    length = int(length_text)
    if length > MAX_REQUEST:
        raise NetstringError("too long")
    end = colon + 1 + length
    if len(buffer) < end + 1:
        return None
    if buffer[end : end + 1] != b",":
        raise NetstringError("no comma")
    return buffer[colon + 1 : end].decode("utf-8", "replace"), buffer[end + 1 :]


def class_table(transport_text: str) -> dict[str, str]:
    """domain -> ISP class, from an instance's transport table (`gmail.com isp-gmail:`)."""
    out: dict[str, str] = {}
    for line in transport_text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#") and parts[1].startswith(CLASS_PREFIX):
            out[parts[0].lower()] = parts[1][len(CLASS_PREFIX) :].partition(":")[0]
    return out


def sender_of(instance: str) -> str | None:
    """`postfix-ip-dedi-1` -> `ip-dedi-1`, `postfix-pool-shared` -> `pool-shared`: the
    sending IP as the pauses key it (its egress on this relay); None for anything else."""
    if "/" in instance or ".." in instance or not instance.startswith(INSTANCE_PREFIX):
        return None
    sender = instance[len(INSTANCE_PREFIX) :]
    kind, _, name = sender.partition("-")
    return sender if kind in ("ip", "pool") and name else None


def instance_of(sender: str) -> str:
    return f"{INSTANCE_PREFIX}{sender}"


def held_marker(sender: str, isp_class: str) -> str:
    """The words of the retry reason that name the pause: Postfix keeps them as the
    deferred recipient's delay reason, so the mail a pause held can be found again."""
    return f"relayops paused {isp_class} for {sender}"


class Answerer:
    """One lookup -> one reply (pure but for the book and the clock, both injected)."""

    def __init__(
        self, book: PauseBook, etc: Path, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.book, self.etc, self.clock = book, etc, clock
        self._tables: dict[str, tuple[float, dict[str, str]]] = {}
        # Answers by kind (retry / notfound / temp), read by the metrics.
        self.answers: dict[str, int] = {"retry": 0, "notfound": 0, "temp": 0}

    def _classes(self, instance: str) -> dict[str, str]:
        path = self.etc / instance / "transport"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return {}
        cached = self._tables.get(instance)
        if cached is None or cached[0] != mtime:
            cached = (mtime, class_table(path.read_text(encoding="utf-8", errors="replace")))
            self._tables[instance] = cached
        return cached[1]

    def answer(self, request: str) -> str:
        name, _, key = request.partition(" ")
        sender = sender_of(name)
        if sender is None:
            return "NOTFOUND "
        # Postfix hands a socketmap (a "pattern" table to it) the whole address.
        domain = key.rpartition("@")[2].lower().rstrip(".")
        isp = self._classes(name).get(domain)
        if isp is None:
            return "NOTFOUND "
        paused = self.book.lookup(sender, isp, now=self.clock())
        if paused is None:
            return "NOTFOUND "
        until = datetime.fromtimestamp(paused.until, UTC).strftime("%H:%M:%S")
        return (
            f"OK retry:4.7.0 {held_marker(sender, isp)} until {until} UTC after the "
            f"receiver asked to slow down ({paused.kind})"
        )


async def serve(answerer: Answerer, host: str, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        try:
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                buffer += chunk
                while True:
                    parsed = parse_netstring(buffer)
                    if parsed is None:
                        break
                    request, buffer = parsed
                    try:
                        reply = answerer.answer(request)
                    except Exception as exc:  # a store error must not stop mail: TEMP
                        reply = f"TEMP {type(exc).__name__}"
                    kind = "retry" if reply.startswith("OK") else reply.split(" ")[0].lower()
                    answerer.answers[kind] = answerer.answers.get(kind, 0) + 1
                    writer.write(netstring(reply))
                await writer.drain()
        except (NetstringError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
