#!/usr/bin/env python3
"""Messages per second through a loopback Postfix with the message-checking milter vs without.

    PYTHONPATH=src .venv/bin/python bench/milter/run.py [--messages 600] [--connections 6]
                                        [--rounds 8] [--no-dkim] [--json FILE]

One Dovecot (SASL), one `relayops policyd --milter` and one OpenDKIM serve two private
Postfix instances that differ only in `smtpd_milters`: the message checks then OpenDKIM
(the relay with the milter), or OpenDKIM alone (today's relay, the reference measured in
the same run). `--no-dkim` leaves the signer out of both: the milter against a bare
Postfix, its cost at its most visible. Each round sends `--messages`
authenticated submissions over `--connections` persistent SMTP sessions to one instance,
then the same to the other, the order alternating between rounds; accepted mail is
discarded (`default_transport = discard:`), so the figure is the submission path: SASL,
the policy service at RCPT and END-OF-DATA, the milter, cleanup and the queue.
Needs root (Postfix), the postfix and dovecot-core packages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.policyd import rules_data  # noqa: E402
from support.processes import world_readable_tmpdir  # noqa: E402
from support.submission import Submission, postfix, services  # noqa: E402

PASSWORDS = {"acme-app": "bench-secret"}
RULES = rules_data(
    acme={
        "daily_quota": 10_000_000,
        "plan": "business",
        "from_subdomains": False,
        "campaigns": "allowed",
        "campaign_recipients": 50,
    }
)
# A typical transactional message: the headers a sending library writes.
MESSAGE = (
    "From: Acme Shop <orders@acme.example>\r\n"
    "To: customer@example.org\r\n"
    "Subject: Your order 1234\r\n"
    "Date: Tue, 01 Dec 2026 08:00:00 +0000\r\n"
    "Message-ID: <{n}@acme.example>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n" + "Thank you for your order.\r\n" * 40
)


def send_batch(relay: Submission, messages: int, connections: int) -> float:
    """Wall-clock seconds for `messages` submissions over `connections` sessions."""
    per = [messages // connections + (i < messages % connections) for i in range(connections)]
    errors: list[str] = []
    start = threading.Barrier(connections + 1)

    def worker(count: int, offset: int) -> None:
        try:
            with relay.smtp("acme-app", timeout=60) as client:
                start.wait()
                for n in range(offset, offset + count):
                    body = MESSAGE.format(n=n).encode()
                    refused = client.sendmail("orders@acme.example", ["c@example.org"], body)
                    if refused:
                        errors.append(str(refused))
        except Exception as exc:  # a bench reports, it does not hide: re-raised below
            errors.append(repr(exc))
            start.abort()

    threads = [
        threading.Thread(target=worker, args=(count, sum(per[:i]))) for i, count in enumerate(per)
    ]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed, first: {errors[0]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--connections", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=60, help="messages per instance first")
    parser.add_argument("--dkim", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()

    root = world_readable_tmpdir("relayops-bench-milter-")
    rounds: list[dict[str, Any]] = []
    try:
        with ExitStack() as stack:
            dkim_domain = "acme.example" if args.dkim else None
            shared = stack.enter_context(services(root, RULES, PASSWORDS, dkim_domain=dkim_domain))
            relays = {
                "with_milter": stack.enter_context(
                    postfix(root / "with", shared, milter=True, dkim=args.dkim, relay_port=None)
                ),
                "without_milter": stack.enter_context(
                    postfix(root / "without", shared, milter=False, dkim=args.dkim, relay_port=None)
                ),
            }
            for relay in relays.values():
                send_batch(relay, args.warmup, args.connections)
            for i in range(args.rounds):
                order = list(relays) if i % 2 == 0 else list(reversed(relays))
                figures: dict[str, Any] = {"round": i + 1, "order": order}
                for name in order:
                    seconds = send_batch(relays[name], args.messages, args.connections)
                    figures[name] = round(args.messages / seconds, 1)
                figures["ratio"] = round(figures["with_milter"] / figures["without_milter"], 3)
                rounds.append(figures)
                print(json.dumps(figures), flush=True)
            log = shared.daemon.log()
            refused = log.count("event=refused")
            if refused or "milter_protocol_error" in log or "Traceback" in log:
                raise RuntimeError(f"the daemon refused or failed during the bench:\n{log[-2000:]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ratios = [r["ratio"] for r in rounds]
    summary = {
        "machine": f"{platform.node()} {os.cpu_count()} cpus, {platform.platform()}",
        "opendkim_in_both": args.dkim,
        "messages_per_round": args.messages,
        "connections": args.connections,
        "rounds": rounds,
        "median_with_milter": statistics.median(r["with_milter"] for r in rounds),
        "median_without_milter": statistics.median(r["without_milter"] for r in rounds),
        "median_ratio": statistics.median(ratios),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
