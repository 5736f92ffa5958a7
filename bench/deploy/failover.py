"""The counters' primary killed under load on the fleet lab, behind the deployed Sentinel.

    flock /tmp/relayops-lab-session.lock .venv/bin/python bench/deploy/failover.py \
        [--relays 3] [--rate 100] [--seconds 20] [--kill-at 5] [--out FILE.json]

Needs the fleet lab up (`relayops lab up --index 1 --relays N`, N ≥ 3). Deploys a copy
of the example repository to its first `--relays` relays with the counters behind
Sentinel on relays 1-3 (fleet_lab.py), then:

1. every relay's policy daemon is asked `--rate` RCPT questions a second for umbrella
   (quota 15,000: never reached here), each answer kept with its time;
2. at `--kill-at` seconds the primary's redis-server (relay 1) is SIGKILLed and left
   down; the sentinels' answer to "where is the primary" is polled meanwhile;
3. when the load ends: the timeline (answers per second by kind), the tempfail window
   against the failover time, and the counts lost (accepted answers the new primary's
   counter does not hold: asynchronous replication, docs/policyd.md);
4. exact counting again: stark's quota (1,000) spent through all daemons at once must
   accept exactly 1,000;
5. relay 1's Redis started again must come back as a replica of the new primary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_lab import (  # the fleet lab helpers beside this script
    INDEX,
    SENTINELS,
    fresh_repo,
    on_relay,
    redis_cli,
    sentinel_cli,
    write_inventory,
    write_report,
)
from fleet_quota import POLICYD, _request, ask, kind, spend

from relayops.deploy.runner import run_deploy
from relayops.lab import state as lab_state
from relayops.lab.topology import Topology

LOAD_LOGIN = "umbrella"
EXACT_LOGIN, EXACT_QUOTA, EXACT_EACH = "stark", 1000, 500
REDIS_PIDFILE = "/run/redis/redis-server.pid"
DATA_PORT = 6380


def client(login: str, rate: float, seconds: float) -> list[tuple[float, str]]:
    """Paced questions on one connection (a new one after an error); (wall time, kind)."""
    import socket

    sender = f"fleet@{login}.example"
    answers: list[tuple[float, str]] = []
    end = time.time() + seconds
    sock: socket.socket | None = None
    buf = b""
    i = 0
    while (now := time.time()) < end:
        due = now + 1 / rate
        try:
            if sock is None:
                sock, buf = socket.create_connection(POLICYD, timeout=10), b""
            action, buf = ask(sock, buf, _request(login, sender, f"f{i}@isp.lab"))
            answers.append((time.time(), kind(action)))
        except OSError as exc:
            answers.append((time.time(), f"error:{type(exc).__name__}"))
            sock = None
        i += 1
        time.sleep(max(0.0, due - time.time()))
    return answers


def _days() -> list[dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    return [today + dt.timedelta(days=d) for d in (-1, 0, 1)]


def count_keys(customer: str) -> list[str]:
    keys = [f"relayops:flag:complaint:{customer}"]
    for day in _days():
        keys.append(f"relayops:count:{customer}:{day}")
        keys += [f"relayops:notice:{customer}:{day}:{k}" for k in ("warning", "limit")]
    return keys


def primary(topo: Topology, k: int) -> str:
    return sentinel_cli(topo, k, ["SENTINEL", "get-master-addr-by-name", "relayops"]).split()[0]


def master_info(topo: Topology, k: int) -> dict[str, str]:
    lines = sentinel_cli(topo, k, ["SENTINEL", "masters"]).split("\n")
    return dict(zip(lines[::2], lines[1::2], strict=False))


def wait_ready(topo: Topology, timeout: float = 60) -> float:
    """Until every sentinel sees the primary, 2 replicas and 2 other sentinels."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        infos = [master_info(topo, k) for k in range(1, SENTINELS + 1)]
        if all(
            i.get("num-slaves") == str(SENTINELS - 1)
            and i.get("num-other-sentinels") == str(SENTINELS - 1)
            and i.get("flags") == "master"
            for i in infos
        ):
            return round(time.monotonic() - started, 2)
        time.sleep(0.5)
    raise SystemExit(f"sentinels not ready after {timeout} s: {infos}")


def counter(topo: Topology, address: str, customer: str) -> int:
    day = dt.datetime.now(dt.UTC).astimezone(_tz(customer)).date()
    value = redis_cli(topo, 2, address, DATA_PORT, ["GET", f"relayops:count:{customer}:{day}"])
    return int(value or 0)


def _tz(customer: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo({"umbrella": "Asia/Tokyo", "stark": "Australia/Sydney"}[customer])


def _netns(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable]


def run_load(namespaces: list[str], rate: float, seconds: float) -> list[list[Any]]:
    script = str(Path(__file__).resolve())
    procs = [
        subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                script,
                "--client",
                LOAD_LOGIN,
                str(rate),
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for ns in namespaces
    ]
    out: list[list[Any]] = []
    for proc in procs:
        text, _ = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"load client failed with {proc.returncode}")
        out += json.loads(text)
    return out


def timeline(answers: list[list[Any]], origin: float) -> list[dict[str, Any]]:
    """Answers per second by kind, seconds counted from the kill."""
    per: dict[int, Counter[str]] = {}
    for t, what in answers:
        per.setdefault(int((t - origin) // 1), Counter())[what] += 1
    return [{"second": s, **dict(sorted(per[s].items()))} for s in sorted(per)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--relays", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0, help="questions/s per daemon")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kill-at", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    state = lab_state.load(INDEX)
    if state is None or state.relays < max(args.relays, SENTINELS):
        raise SystemExit(f"bring the fleet lab up: relayops lab up --index {INDEX} --relays 3")
    topo = Topology(index=INDEX, relay_count=state.relays)
    root = fresh_repo()
    inventory = write_inventory(root, topo, args.relays)
    deployed = run_deploy(inventory, capture=True)
    if deployed.returncode != 0:
        raise SystemExit(f"deploy failed:\n{deployed.output[-6000:]}")
    out: dict[str, Any] = {"relays": args.relays, "rate_per_daemon": args.rate}
    out["sentinels_ready_s"] = wait_ready(topo)
    old = primary(topo, 2)
    out["primary_before"] = old
    keys = count_keys(LOAD_LOGIN) + count_keys(EXACT_LOGIN)
    redis_cli(topo, 2, old, DATA_PORT, ["DEL", *keys])

    namespaces = [topo.netns(r) for r in topo.relays[: args.relays]]
    result: dict[str, list[list[Any]]] = {}
    load = threading.Thread(
        target=lambda: result.setdefault("answers", run_load(namespaces, args.rate, args.seconds))
    )
    started = time.time()
    load.start()
    time.sleep(args.kill_at)
    killed = time.time()
    on_relay(topo, 1, f"kill -9 $(cat {REDIS_PIDFILE})")
    new = old
    while new == old and time.time() - killed < 60:
        time.sleep(0.05)
        new = primary(topo, 2)
    switched = time.time()
    load.join()
    answers = result["answers"]
    kinds = Counter(a[1] for a in answers)
    tempfails = [a[0] - killed for a in answers if a[1] != "dunno"]
    counted = counter(topo, new, LOAD_LOGIN)
    out |= {
        "primary_after": new,
        "load_started_s_before_kill": round(killed - started, 2),
        "failover_s": round(switched - killed, 2),
        "answers": dict(kinds),
        "not_dunno_window_s": (
            [round(min(tempfails), 2), round(max(tempfails), 2)] if tempfails else None
        ),
        "accepted": kinds["dunno"],
        "counter_on_new_primary": counted,
        "lost": kinds["dunno"] - counted,
        "timeline": timeline(answers, killed),
    }
    spent = spend(namespaces, EXACT_LOGIN, EXACT_EACH)
    asked = EXACT_EACH * len(namespaces)
    out["exact_after_failover"] = {
        "daemons": len(namespaces),
        "quota": EXACT_QUOTA,
        "asked": asked,
        "answers": dict(spent),
        "exact": spent == {"dunno": EXACT_QUOTA, "quota_452": asked - EXACT_QUOTA},
    }
    on_relay(topo, 1, "/etc/init.d/redis-server start >/dev/null")
    rejoined = time.monotonic()
    role: list[str] = []
    while time.monotonic() - rejoined < 60:
        role = redis_cli(topo, 1, "127.0.0.1", DATA_PORT, ["ROLE"]).split("\n")
        if role[:4] == ["slave", new, str(DATA_PORT), "connected"]:
            break
        time.sleep(0.5)
    out["old_primary_rejoins"] = {
        "role": role[:4],
        "seconds": round(time.monotonic() - rejoined, 2),
    }
    write_report(out, args.out)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        print(json.dumps(client(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))))
    else:
        main()
