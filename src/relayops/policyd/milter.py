"""The milter protocol side of the message checks: one asyncio connection per SMTP session.

kilter.protocol parses and packs the milter messages and checks the state machine
(sans-I/O); this module only moves bytes and keeps per-message state. The decision is
`message_checks.judge()`.

What it asks Postfix for (negotiated down to what Postfix offers):

- the ``{auth_authen}`` macro at MAIL FROM (also in Postfix's default
  ``milter_mail_macros``), which names the login and so the customer;
- RCPT (counted), the headers and end-of-headers, where it answers: Accept (nothing
  more to see for this message, so no end-of-message event) or the refusal;
- no connect, HELO, unknown-command or body events, and no reply to MAIL, RCPT and
  each header (SMFIP_NR_*).

The DATA event is kept on purpose, and answered: Postfix writes its milter packets
without TCP_NODELAY, so two unanswered small writes in a row (the DATA macros, then
the first header from cleanup) wait for our delayed ACK, about 40 ms per message on
Linux. The answer to DATA carries that ACK at once (measured: bench/milter/RESULTS.md).

A protocol error closes the connection; Postfix then applies ``milter_default_action``
(tempfail in relayops' main.cf), so nothing passes unchecked.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Final, cast

from kilter.protocol import (
    Abort,
    Accept,
    ActionFlags,
    Close,
    Continue,
    Data,
    EndOfHeaders,
    EndOfMessage,
    EnvelopeFrom,
    EnvelopeRecipient,
    FilterProtocol,
    Header,
    Macro,
    Negotiate,
    ProtocolFlags,
    ReplyCode,
    Stage,
    TemporaryFailure,
)
from kilter.protocol.buffer import SimpleBuffer
from kilter.protocol.exceptions import InsufficientSpace, UnexpectedMessage

from relayops.policyd.message_checks import READ_HEADERS, Message, Refusal, judge, shown
from relayops.policyd.rules import Rules

log = logging.getLogger("relayops.policyd.milter")

LOGIN_MACRO: Final = "{auth_authen}"
MILTER_VERSION: Final = 6  # Postfix >= 2.6 speaks milter protocol 6
# A milter packet holds one header at most: Postfix's header_size_limit is 102400.
BUFFER_BYTES: Final = 256 * 1024
WANTED: Final = (
    ProtocolFlags.NO_CONNECT
    | ProtocolFlags.NO_HELO
    | ProtocolFlags.NO_UNKNOWN
    | ProtocolFlags.NO_BODY
    | ProtocolFlags.NR_MAIL
    | ProtocolFlags.NR_RCPT
    | ProtocolFlags.NR_HDR
)


def tempfail_reply(text: str) -> bytes:
    """A 451 reply for our own trouble; the client keeps the message and retries."""
    return f"451 4.7.1 {text}".encode() + b"\0"


class MilterConnection(asyncio.Protocol):
    """One Postfix smtpd session; `rules` is read per message, so a SIGHUP reload applies."""

    def __init__(
        self,
        rules: Callable[[], Rules],
        refused: Callable[[str, Refusal], None],
        connections: set[MilterConnection],
    ) -> None:
        self.rules = rules
        self.refused = refused
        self.connections = connections
        self.protocol = FilterProtocol()
        self.inbox = SimpleBuffer(BUFFER_BYTES)
        self.outbox = SimpleBuffer(BUFFER_BYTES)
        self.transport: asyncio.Transport | None = None
        self.macros: dict[str, str] = {}
        self.login = ""
        self.headers: list[tuple[str, str]] = []
        self.recipients = 0

    # ---- asyncio --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        offset = 0
        try:
            while offset < len(data):
                room = min(len(data) - offset, self.inbox.available)
                if room == 0:
                    raise InsufficientSpace
                self.inbox[:] = data[offset : offset + room]
                offset += room
                for message in self.protocol.read_from(self.inbox):
                    self.handle(message)
        except (
            InsufficientSpace,  # one packet larger than the buffer
            UnexpectedMessage,  # out of the protocol's order
            ValueError,  # UnknownMessage, undecodable macros, flags Postfix did not offer
            struct.error,  # truncated fields
            AssertionError,  # kilter checks packet shapes with assert
            IndexError,
        ) as exc:
            log.warning("event=milter_protocol_error error=%s", type(exc).__name__)
            self.close()
            return
        if self.outbox.filled and self.transport is not None:
            self.transport.write(self.outbox[:].tobytes())
            del self.outbox[:]

    # ---- the session ----------------------------------------------------------------

    def send(self, message: Negotiate | Continue | Accept | ReplyCode | TemporaryFailure) -> None:
        self.protocol.write_to(self.outbox, message)

    def handle(self, message: object) -> None:
        # Dispatch on the exact type, most frequent first: kilter's messages are ABCs,
        # whose isinstance checks (a `match` on classes) cost more than the rest here.
        kind = type(message)
        if kind is Macro:
            self.macros.update(cast(Macro, message).macros)
        elif kind is Header:
            header = cast(Header, message)
            if header.name.lower() in READ_HEADERS:  # the rest is never read: not kept
                value = bytes(header.value).decode("utf-8", errors="replace")
                self.headers.append((header.name, value))
            if Header.ident not in self.protocol.nr:
                self.send(Continue())
        elif kind is EnvelopeRecipient:
            self.recipients += 1
            self.answer(message)
        elif kind is EnvelopeFrom:
            # A new message: forget the last one's state (RSET or a second MAIL).
            self.login = self.macros.get(LOGIN_MACRO, "")
            self.headers = []
            self.recipients = 0
            self.answer(message)
        elif kind is Data:
            self.send(Continue())  # answered, not skipped: see the module's docstring
        elif kind is EndOfHeaders:
            self.end_of_headers()
        elif kind is EndOfMessage:
            self.send(Continue())
        elif kind is Abort:
            self.headers = []
            self.recipients = 0
        elif kind is Negotiate:
            self.negotiate(cast(Negotiate, message))
        elif kind is Close:
            self.close()
        else:
            # An event negotiated away that Postfix sent anyway: let it pass.
            if self.protocol.needs_response(message):  # type: ignore[arg-type]
                self.send(Continue())

    def answer(self, message: object) -> None:
        """Continue, unless Postfix agreed to expect no reply to this event."""
        if self.protocol.needs_response(message):  # type: ignore[arg-type]
            self.send(Continue())

    def negotiate(self, offer: Negotiate) -> None:
        macros: dict[Stage, list[str]] = {}
        actions = ActionFlags.NONE
        if ActionFlags.SETSYMLIST in offer.action_flags:
            # Only the login, at MAIL FROM: no macro packets at the other stages.
            macros = {stage: [] for stage in Stage}
            macros[Stage.ENVELOPE_FROM] = [LOGIN_MACRO]
            actions = ActionFlags.SETSYMLIST
        self.send(
            Negotiate(
                min(MILTER_VERSION, offer.version),
                actions,
                WANTED & offer.protocol_flags,
                macros,
            )
        )

    def end_of_headers(self) -> None:
        login = self.login
        if not login:
            # Submission always authenticates: no login means the macro is not sent.
            log.error("event=milter_no_login hint=milter_mail_macros_lacks_auth_authen")
            self.send(ReplyCode(tempfail_reply("the relay cannot tell who is sending; retry")))
            return
        customer = self.rules().by_login.get(login.lower())
        if customer is None:
            # Authenticated but unknown to this host's rules: a deploy is in progress.
            text = f"rules for login {shown(login)} are not loaded yet"
            self.send(ReplyCode(tempfail_reply(text)))
            return
        refusal = judge(Message(self.headers, self.recipients), customer)
        if refusal is None:
            # Accept: this milter has nothing more to say about this message, so Postfix
            # skips its end-of-message event (one round trip less); the next milters
            # (OpenDKIM) still see the whole message.
            self.send(Accept())
            return
        self.refused(login, refusal)
        self.send(ReplyCode(refusal.reply.encode() + b"\0"))
