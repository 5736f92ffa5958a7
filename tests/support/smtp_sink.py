"""A minimal SMTP sink for tests: accepts every message and keeps it in memory.

Hand-written because the standard library's smtpd is gone (Python 3.12) and
the suite needs no more than EHLO/MAIL/RCPT/DATA/RSET/NOOP/QUIT (RFC 5321),
which Postfix's smtp client and smtplib both speak.
"""

from __future__ import annotations

import socketserver
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Received] = field(default_factory=list)

    def start(self) -> SmtpSink:
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 sink.test ESMTP")
                mail_from, rcpts = "", list[str]()
                while line := self.rfile.readline(4096):
                    cmd = line.decode(errors="replace").rstrip("\r\n")
                    verb = cmd[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-sink.test\r\n250 8BITMIME" if verb == "EHLO" else "250 ok")
                    elif verb == "MAIL":
                        mail_from, rcpts = cmd.split(":", 1)[1].strip().split(" ")[0], []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        rcpts.append(cmd.split(":", 1)[1].strip().split(" ")[0])
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        body = bytearray()
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            body += chunk[1:] if chunk.startswith(b"..") else chunk
                        sink.messages.append(
                            Received(
                                mail_from.strip("<>"), [r.strip("<>") for r in rcpts], bytes(body)
                            )
                        )
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 ok")
                    else:
                        self.reply("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)
