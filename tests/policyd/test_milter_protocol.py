"""The milter on a real loopback socket, spoken to as Postfix would (kilter packs the MTA side)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kilter.protocol import (
    Accept,
    ActionFlags,
    Close,
    Continue,
    Data,
    EndOfHeaders,
    EndOfMessage,
    EnvelopeFrom,
    EnvelopeRecipient,
    Header,
    Macro,
    Message,
    Negotiate,
    ProtocolFlags,
    ReplyCode,
    Stage,
)
from kilter.protocol.buffer import SimpleBuffer
from kilter.protocol.exceptions import NeedsMore

from relayops.policyd.message_checks import Refusal
from relayops.policyd.milter import WANTED, MilterConnection
from relayops.policyd.rules import Rules, parse_rules
from relayops.policyd.server import Listen, start_listener
from support.policyd import rules_data

# What Postfix 3.7 offers (milter8.c): every action, every protocol option it knows.
POSTFIX_ACTIONS = ActionFlags(0x1FF)
POSTFIX_PROTOCOL = ProtocolFlags(0x1FFFFF)
RULES = parse_rules(rules_data(acme={"plan": "business", "campaign_recipients": 2}))


def pack(*messages: Message) -> bytes:
    buf = SimpleBuffer(1 << 20)
    for message in messages:
        message.pack(buf)
    return buf[:].tobytes()


def login(name: str) -> Macro:
    return Macro(b"M"[0], {"{auth_authen}": name, "i": "4ABC"})


class Session:
    """One MTA-side connection: send packed messages, read the filter's replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = SimpleBuffer(1 << 20)

    async def send(self, *messages: Message) -> None:
        self.writer.write(pack(*messages))
        await self.writer.drain()

    async def reply(self) -> Message:
        while True:
            try:
                message, size = Message.unpack(self.buf)
            except NeedsMore:
                chunk = await asyncio.wait_for(self.reader.read(65536), 5)
                if not chunk:
                    raise ConnectionError("closed by the milter") from None
                self.buf[:] = chunk
                continue
            message.freeze()
            del self.buf[:size]
            return message

    async def negotiate(
        self, protocol: ProtocolFlags = POSTFIX_PROTOCOL, actions: ActionFlags = POSTFIX_ACTIONS
    ) -> Message:
        await self.send(Negotiate(6, actions, protocol))
        return await self.reply()

    async def message(
        self, who: str, headers: Sequence[tuple[str, str]], rcpts: int = 1
    ) -> Message:
        """MAIL, RCPT, DATA, headers, end of headers, as Postfix sends them (NR_* agreed)."""
        await self.send(login(who), EnvelopeFrom(b"<x@acme.example>"))
        for i in range(rcpts):
            await self.send(EnvelopeRecipient(f"<r{i}@example.org>".encode()))
        await self.send(Data())
        assert isinstance(await self.reply(), Continue)
        for name, value in headers:
            await self.send(Header(name, value.encode()))
        await self.send(EndOfHeaders())
        return await self.reply()


async def with_milter(test: Any, rules: list[Rules] | None = None) -> list[Refusal]:
    """Run `test(connect)` against a milter listener on a free loopback port."""
    holder = rules if rules is not None else [RULES]
    refused: list[Refusal] = []
    crashes: list[dict[str, Any]] = []  # an exception escaping a callback lands here
    asyncio.get_running_loop().set_exception_handler(lambda _, context: crashes.append(context))
    conns: set[MilterConnection] = set()
    server = await start_listener(
        Listen(host="127.0.0.1", port=0),
        lambda: MilterConnection(lambda: holder[0], lambda _, r: refused.append(r), conns),
        socket_mode=0o600,
    )
    port = server.sockets[0].getsockname()[1]

    async def connect() -> Session:
        return Session(*await asyncio.open_connection("127.0.0.1", port))

    try:
        await test(connect)
    finally:
        server.close()
        for conn in list(conns):
            conn.close()
        await server.wait_closed()
    assert crashes == []
    return refused


def test_negotiation_asks_for_the_login_and_no_replies_before_end_of_headers() -> None:
    async def test(connect: Any) -> None:
        s = await connect()
        only_login = {stage: [] for stage in Stage} | {Stage.ENVELOPE_FROM: ["{auth_authen}"]}
        assert await s.negotiate() == Negotiate(6, ActionFlags.SETSYMLIST, WANTED, only_login)
        # DATA is kept (and answered): see the milter module's docstring.
        assert WANTED == (
            ProtocolFlags.NO_CONNECT | ProtocolFlags.NO_HELO | ProtocolFlags.NO_UNKNOWN
            | ProtocolFlags.NO_BODY | ProtocolFlags.NR_MAIL | ProtocolFlags.NR_RCPT
            | ProtocolFlags.NR_HDR
        )  # fmt: skip
        # An MTA that cannot set macro lists: none asked (Postfix's default list has it).
        s2 = await connect()
        assert await s2.negotiate(actions=ActionFlags.ADD_HEADERS) == Negotiate(
            6, ActionFlags.NONE, WANTED, {}
        )

    asyncio.run(with_milter(test))


def test_own_from_continues_and_foreign_from_gets_the_reply_code() -> None:
    async def test(connect: Any) -> None:
        s = await connect()
        await s.negotiate()
        # Accept: nothing more to see, so Postfix sends no end-of-message to this milter.
        assert isinstance(await s.message("acme-app", [("From", "a@acme.example")]), Accept)
        # Should an end-of-message come anyway, it is let through.
        await s.send(EndOfMessage(b""))
        assert isinstance(await s.reply(), Continue)
        # The next message on the same session: judged on its own.
        assert await s.message("ACME-APP", [("From", "ceo@bank.example")]) == ReplyCode(
            b"550 5.7.1 From: domain bank.example is not one of acme's domains; "
            b"use an address at acme-mail.example, acme.example\0"
        )
        await s.send(Close())

    refused = asyncio.run(with_milter(test))
    assert [r.problem.value for r in refused] == ["from_domain"]


def test_recipients_are_counted_per_message() -> None:
    async def test(connect: Any) -> None:
        s = await connect()
        await s.negotiate()
        plain = [("From", "a@acme.example")]
        assert isinstance(await s.message("acme-app", plain, rcpts=2), Accept)
        reply = await s.message("acme-app", plain, rcpts=3)
        assert isinstance(reply, ReplyCode)
        assert bytes(reply.content).startswith(
            b"550 5.7.1 bulk mail (it has 3 recipients, more than the 2 of plan business)"
        )

    asyncio.run(with_milter(test))


def test_without_nr_options_every_event_gets_a_continue() -> None:
    async def test(connect: Any) -> None:
        s = await connect()
        await s.negotiate(protocol=ProtocolFlags(0x37F))  # no NR_* offered (0x80 is NR_HDR)
        await s.send(login("acme-app"), EnvelopeFrom(b"<x@acme.example>"))
        assert isinstance(await s.reply(), Continue)
        await s.send(EnvelopeRecipient(b"<r@example.org>"))
        assert isinstance(await s.reply(), Continue)
        await s.send(Data())
        assert isinstance(await s.reply(), Continue)
        await s.send(Header("From", b"ceo@bank.example"))
        assert isinstance(await s.reply(), Continue)
        await s.send(EndOfHeaders())
        reply = await s.reply()
        assert isinstance(reply, ReplyCode)
        assert bytes(reply.content).startswith(b"550 5.7.1 From: domain bank.example")

    asyncio.run(with_milter(test))


def test_no_login_and_unknown_login_are_tempfailed() -> None:
    async def test(connect: Any) -> None:
        s = await connect()
        await s.negotiate()
        await s.send(EnvelopeFrom(b"<x@acme.example>"), Header("From", b"a@acme.example"))
        await s.send(EndOfHeaders())
        assert await s.reply() == ReplyCode(
            b"451 4.7.1 the relay cannot tell who is sending; retry\0"
        )
        assert await s.message("nobody", [("From", "a@acme.example")]) == ReplyCode(
            b"451 4.7.1 rules for login nobody are not loaded yet\0"
        )

    asyncio.run(with_milter(test))


def test_reloaded_rules_apply_to_the_next_message_of_an_open_session() -> None:
    holder = [RULES]

    async def test(connect: Any) -> None:
        s = await connect()
        await s.negotiate()
        headers = [("From", "a@acme.example"), ("Precedence", "bulk")]
        reply = await s.message("acme-app", headers)
        assert isinstance(reply, ReplyCode)
        assert b"must offer one-click unsubscribe" in bytes(reply.content)
        holder[0] = parse_rules(rules_data(acme={"plan": "starter", "campaigns": "forbidden"}))
        reply = await s.message("acme-app", headers)
        assert isinstance(reply, ReplyCode)
        assert bytes(reply.content).startswith(b"550 5.7.1 plan starter of acme does not allow")

    asyncio.run(with_milter(test, holder))


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=600), negotiated=st.booleans())
def test_garbage_closes_that_connection_and_the_listener_keeps_serving(
    garbage: bytes, negotiated: bool
) -> None:
    async def test(connect: Any) -> None:
        s = await connect()
        if negotiated:
            await s.negotiate()
        s.writer.write(garbage)
        await s.writer.drain()
        s.writer.close()
        fresh = await connect()
        assert isinstance(await fresh.negotiate(), Negotiate)
        assert isinstance(await fresh.message("acme-app", [("From", "a@acme.example")]), Accept)

    asyncio.run(with_milter(test))
