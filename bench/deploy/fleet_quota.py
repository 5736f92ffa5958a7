"""One quota spent through every policy daemon of a fleet at once.

Run as `python bench/deploy/fleet_fleet_quota.py --client LOGIN N` inside a relay's network
namespace (`ip netns exec`), it asks that relay's daemon (127.0.0.1:10040, where the
deploy binds it) N RCPT questions for LOGIN on one connection and prints the answers
counted by kind as JSON. `spend()` starts one such client per relay at the same time.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

POLICYD = ("127.0.0.1", 10040)


def _request(login: str, sender: str, recipient: str) -> bytes:
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.10",
        "sender": sender,
        "recipient": recipient,
        "sasl_method": "PLAIN",
        "sasl_username": login,
        "size": "0",
    }
    return "".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n"


def kind(action: str) -> str:
    """DUNNO, the quota refusal (452 4.7.1), a tempfail (4.3.0) or anything else."""
    if action == "DUNNO":
        return "dunno"
    if action.startswith("452 4.7.1") and "daily quota" in action:
        return "quota_452"
    if "4.3.0" in action:
        return "tempfail_430"
    return "other:" + action[:60]


def ask(sock: socket.socket, buf: bytes, request: bytes) -> tuple[str, bytes]:
    """Send one request; the daemon's action and what was read past its answer."""
    sock.sendall(request)
    while b"\n\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the daemon")
        buf += chunk
    answer, _, buf = buf.partition(b"\n\n")
    return answer.decode().removeprefix("action="), buf


def client(login: str, count: int) -> Counter[str]:
    sender = f"fleet@{login}.example"
    counts: Counter[str] = Counter()
    with socket.create_connection(POLICYD, timeout=30) as sock:
        buf = b""
        for _ in range(count):
            request = _request(login, sender, f"{uuid.uuid4().hex[:12]}@isp.lab")
            action, buf = ask(sock, buf, request)
            counts[kind(action)] += 1
    return counts


def spend(namespaces: list[str], login: str, each: int) -> Counter[str]:
    """Every namespace's daemon asked `each` times at once; the answers added up."""
    script = str(Path(__file__).resolve())
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, script, "--client", login, str(each)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for ns in namespaces
    ]
    total: Counter[str] = Counter()
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"quota client failed with {proc.returncode}")
        total.update(json.loads(out))
    return total


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        print(json.dumps(client(sys.argv[2], int(sys.argv[3]))))
    else:
        raise SystemExit("usage: fleet_quota.py --client LOGIN COUNT")
