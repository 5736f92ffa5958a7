"""The policy daemon's own Python per request, without the sockets: the burst in process.

    PYTHONPATH=src .venv/bin/python bench/policyd/inproc.py [--rounds 7]

The 20,000 requests of `burst.py` (1,000 customers from its rendered rules, which
`burst.py` writes first) go to `PolicyConnection.data_received` one by one, as
one read each (the event loop runs every 8, as with 8 connections), with a
transport that only counts the answers and the counters in memory: what is left
is the protocol, the rules, the counting, the refusal lines and the notices of
the daemon's request path. Prints the best round's CPU µs per request. Under
callgrind the count of instructions is the same whatever else the machine does,
which the seconds are not:

    for n in 1 3; do PYTHONPATH=src valgrind --tool=callgrind \\
        --callgrind-out-file=/dev/null .venv/bin/python bench/policyd/inproc.py --rounds $n; done

(the difference of the two totals / 40,000 is the instructions per request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

from loadgen import burst_requests

from relayops.policyd import logsink
from relayops.policyd.notify import Notifier
from relayops.policyd.protocol import PolicyConnection
from relayops.policyd.rules import Charge, Outcome, load_rules
from relayops.policyd.server import PolicyServer
from relayops.policyd.store import MemoryCounters

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "work" / "policyd" / "burst" / "policy.json"  # burst.py's


class Counters:
    """The SQLite store's request path without its writer: counting in memory."""

    description = "memory"

    def __init__(self) -> None:
        self.mem = MemoryCounters()

    def charge(self, charge: Charge) -> Outcome:
        return self.mem.charge_now(charge)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.answers = 0

    def write(self, data: Any) -> None:
        self.answers += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False


async def rounds(n: int) -> float:
    logsink.configure("info", os.open(os.devnull, os.O_WRONLY))  # the daemon's log lines
    logsink.attach(asyncio.get_running_loop())
    rules = load_rules(RULES)
    requests = burst_requests("c{n}-u0", "d0.c{n}.example", 1000, 20000)
    best = float("inf")
    for _ in range(n):
        server = PolicyServer(
            rules=rules, rules_path=None, store=Counters(), notifier=Notifier(None), fail_open=False
        )
        server.notifier.start()
        conn = PolicyConnection(server.handle, server.stats, server.connections)
        transport = Transport()
        conn.connection_made(transport)
        start = time.process_time()
        for i, data in enumerate(requests):
            conn.data_received(data)
            if i % 8 == 7:  # a pass of the event loop, as with 8 connections: notices go out
                await asyncio.sleep(0)
        await server.notifier.close()  # the notices the burst gave (logged: no SMTP here)
        best = min(best, time.process_time() - start)
        if transport.answers != len(requests):
            raise SystemExit(f"{transport.answers} answers to {len(requests)} requests")
    return best / len(requests) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if not RULES.exists():
        raise SystemExit(f"{RULES}: run bench/policyd/burst.py once first (it renders the rules)")
    print(f"{asyncio.run(rounds(args.rounds)):.2f} µs of CPU per request (best of {args.rounds})")


if __name__ == "__main__":
    main()
