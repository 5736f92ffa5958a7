"""The benchmark's reference: the least a Python policy daemon can do.

asyncio.Protocol, splits requests on the empty line, parses name=value into a
dict (as any real daemon must) and answers DUNNO. No rules, no store. Usage:

    python bench/policyd/minimal_daemon.py 127.0.0.1:PORT
"""

from __future__ import annotations

import asyncio
import sys


class Minimal(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            block, sep, rest = self.buf.partition(b"\n\n")
            if not sep:
                return
            self.buf = rest
            attrs = dict(line.split("=", 1) for line in block.decode().split("\n"))
            if attrs.get("request") == "smtpd_access_policy":
                self.transport.write(b"action=DUNNO\n\n")


async def main(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Minimal, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    host, _, port = sys.argv[1].rpartition(":")
    asyncio.run(main(host, int(port)))
