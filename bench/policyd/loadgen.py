"""Load generator for policy daemons: persistent connections, one request in flight each.

Each connection sends a request, waits for the complete answer (``...\\n\\n``),
records the latency and sends the next one, as Postfix's smtpd does. Requests
are encoded once up front so the generator spends its time on the socket, not
on formatting. Usage:

    python bench/policyd/loadgen.py --connect 127.0.0.1:PORT --connections 8 --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass


def policy_request(login: str, sender: str, recipient: str) -> bytes:
    """A RCPT request with the attributes Postfix 3.7 sends."""
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "helo_name": "app.example.org",
        "queue_id": "",
        "sender": sender,
        "recipient": recipient,
        "recipient_count": "0",
        "client_address": "198.51.100.7",
        "client_name": "app.example.org",
        "reverse_client_name": "app.example.org",
        "instance": "2d3c.6564e1c2.4a0b1.0",
        "sasl_method": "PLAIN",
        "sasl_username": login,
        "sasl_sender": "",
        "size": "12345",
        "ccert_subject": "",
        "ccert_issuer": "",
        "ccert_fingerprint": "",
        "ccert_pubkey_fingerprint": "",
        "encryption_protocol": "TLSv1.3",
        "encryption_cipher": "TLS_AES_256_GCM_SHA384",
        "encryption_keysize": "256",
        "etrn_domain": "",
        "stress": "",
        "server_address": "127.0.0.1",
        "server_port": "587",
        "policy_context": "",
        "compatibility_level": "3.6",
        "mail_version": "3.7.11",
    }
    return "".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n"


def burst_requests(login: str, domain: str, logins: int, requests: int) -> list[bytes]:
    """`requests` RCPT requests spread evenly over `logins` logins (request k: login k % logins)."""
    if requests % logins:
        raise ValueError(f"{requests} requests do not spread evenly over {logins} logins")
    return [
        policy_request(
            login.format(n=k % logins),
            f"app@{domain.format(n=k % logins)}",
            f"user{k}@example.org",
        )
        for k in range(requests)
    ]


@dataclass
class Result:
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    answers: dict[str, int]


class _Conn(asyncio.Protocol):
    def __init__(self, payloads: list[bytes], todo: int, done: asyncio.Future[None]) -> None:
        self.payloads = payloads
        self.todo = todo
        self.done = done
        self.buf = b""
        self.latencies: list[int] = []
        self.answers: dict[bytes, int] = {}
        self.i = 0
        self.t0 = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def go(self) -> None:
        self.t0 = time.perf_counter_ns()
        self.transport.write(self.payloads[self.i % len(self.payloads)])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.buf.endswith(b"\n\n"):
            return
        now = time.perf_counter_ns()
        self.latencies.append(now - self.t0)
        answer = self.buf[:-2]
        self.answers[answer] = self.answers.get(answer, 0) + 1
        self.buf = b""
        self.i += 1
        if self.i >= self.todo:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.go()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"closed after {self.i} answers: {exc}"))


async def run_load(
    address: str, connections: int, requests: int, payloads: list[bytes], *, exact: bool = False
) -> Result:
    """Send `requests` in total over `connections` persistent connections.

    `exact`: send each payload exactly once (`requests` must be their number),
    connection i taking payloads i, i + connections, ... — for runs whose
    answers are checked one customer at a time.
    """
    loop = asyncio.get_running_loop()
    if exact and requests != len(payloads):
        raise ValueError(f"exact: {requests} requests but {len(payloads)} payloads")
    per_conn = [requests // connections + (i < requests % connections) for i in range(connections)]
    conns: list[_Conn] = []
    dones: list[asyncio.Future[None]] = []
    for i in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        if exact:
            rotated = payloads[i::connections]
        else:  # each connection starts at its own offset in the payload list
            rotated = payloads[i % len(payloads) :] + payloads[: i % len(payloads)]
        factory = lambda r=rotated, n=per_conn[i], d=done: _Conn(r, n, d)  # noqa: E731
        if address.startswith("unix:"):
            _, proto = await loop.create_unix_connection(factory, address[5:])
        else:
            host, _, port = address.rpartition(":")
            _, proto = await loop.create_connection(factory, host, int(port))
        conns.append(proto)
        dones.append(done)
    start = time.perf_counter()
    for c in conns:
        c.go()
    await asyncio.gather(*dones)
    seconds = time.perf_counter() - start
    for c in conns:
        c.transport.close()
    lat = sorted(x for c in conns for x in c.latencies)
    answers: dict[str, int] = {}
    for c in conns:
        for a, n in c.answers.items():
            key = a.decode(errors="replace")
            answers[key] = answers.get(key, 0) + n
    return Result(
        connections=connections,
        requests=len(lat),
        seconds=round(seconds, 3),
        rps=round(len(lat) / seconds, 1),
        p50_ms=round(statistics.median(lat) / 1e6, 3),
        p99_ms=round(lat[int(len(lat) * 0.99) - 1] / 1e6, 3),
        answers=answers,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", required=True, help="HOST:PORT or unix:PATH")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--login", default="bench-0")
    parser.add_argument("--domain", default="bench-0.example")
    parser.add_argument(
        "--logins",
        type=int,
        default=0,
        help="burst mode: N logins, each sending requests/N recipients exactly once; "
        "--login and --domain are then patterns with {n} (e.g. c{n}-u0, d0.c{n}.example)",
    )
    args = parser.parse_args()
    if args.logins:
        payloads = burst_requests(args.login, args.domain, args.logins, args.requests)
    else:
        payloads = [
            policy_request(args.login, f"app@{args.domain}", f"user{i}@example.org")
            for i in range(64)
        ]
    result = asyncio.run(
        run_load(args.connect, args.connections, args.requests, payloads, exact=bool(args.logins))
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
