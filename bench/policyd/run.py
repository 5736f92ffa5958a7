"""Benchmark relayops policyd against a minimal daemon and peers; writes RESULTS.md.

    .venv/bin/python bench/policyd/run.py [--requests 20000] [--rounds 3] [--no-peers]

Every daemon runs for the whole benchmark on a loopback port; for each number
of connections (1, 8, 64) and each round, the load generator (a separate
process, loadgen.py) drives every daemon in turn, the order alternating
between rounds; the table gives the median of the rounds. Then 500
persistent connections against relayops. Peers are measured when installed:
postfwd1/postfwd2 (Debian package postfwd) and policyd-rate-limit (PyPI, in
its own venv under bench/work/, never the project's). Working files go to
bench/work/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sections import sections

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = ROOT / "bench" / "work" / "policyd"
# postfwd drops to nobody: its files live outside the project tree.
PFWORK = Path(tempfile.gettempdir()) / "relayops-bench-postfwd"
PY = sys.executable
CUSTOMERS = 1000  # rules the daemon indexes (the login hit is one of them)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def wait_port_free(port: int, timeout: float = 20.0) -> None:
    """Until nothing listens on the port any more (a daemon's children exit late)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
        except OSError:
            return
        time.sleep(0.1)
    raise TimeoutError(f"127.0.0.1:{port} still in use")


def write_rules(path: Path) -> None:
    customer = {
        "name": "Bench",
        "status": "active",
        "status_reason": None,
        "timezone": "Europe/Paris",
        "daily_quota": 10**9,
        "warn_ratio": 0.8,
        "max_message_bytes": 31457280,
        "contact": "ops@bench.example",
        "logins": [],
        "domains": [],
        "warmup": [],
    }
    customers = {}
    for i in range(CUSTOMERS):
        c = copy.deepcopy(customer)
        c["logins"], c["domains"] = [f"bench-{i}"], [f"bench-{i}.example"]
        customers[f"bench{i}"] = c
    template = {"subject": "$customer", "body": "$count of $limit"}
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "service": {
                    "name": "Bench",
                    "domain": "relay.bench.example",
                    "notify_from": "noreply@relay.bench.example",
                },
                "customers": customers,
                "notifications": {"warning": template, "limit": template},
            }
        )
    )


@dataclass
class Target:
    name: str
    start: Callable[[int], subprocess.Popen[bytes] | None]
    stop: Callable[[subprocess.Popen[bytes] | None], None] = field(
        default=lambda proc: _terminate(proc)
    )
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    # Restarted before each run, after deleting these files: policyd-rate-limit,
    # whose per-request cost grows with the rows it keeps (one per mail), starts
    # each run empty as at the start of a day; postfwd2's master exited after
    # about 80,000 requests in every full run (nothing logged without syslog).
    restart_per_run: bool = False
    delete_before_run: tuple[Path, ...] = ()


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _spawn(cmd: list[str], log: str, src: Path = ROOT / "src") -> subprocess.Popen[bytes]:
    out = open(WORK / log, "ab")  # noqa: SIM115 - the child keeps it
    # The daemons run this checkout's src/, not whatever relayops the venv has installed.
    env = {**os.environ, "PYTHONPATH": str(src)}
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=out, cwd=WORK, env=env)
    finally:
        out.close()


def relayops(store: str) -> Callable[[int], subprocess.Popen[bytes]]:
    def start(port: int) -> subprocess.Popen[bytes]:
        cmd = [PY, "-c", "from relayops.cli import main; main()", "policyd"]
        cmd += ["--rules", str(WORK / "policy.json"), "--listen", f"127.0.0.1:{port}"]
        return _spawn([*cmd, "--store", store], f"relayops-{store.split(':')[0]}.log")

    return start


def postfwd(
    exe: str, args: list[str]
) -> tuple[Callable[[int], None], Callable[[subprocess.Popen[bytes] | None], None]]:
    """postfwd daemonizes itself (without -d, postfwd1 reads one request from stdin)."""
    pid = PFWORK / f"{exe}.pid"
    daemon = ["-d"] if exe == "postfwd1" else []

    def start(port: int) -> None:
        cache = ["--cache_port", str(free_port())] if exe == "postfwd2" else []
        done = subprocess.run(
            [exe, *daemon, *args, "--port", str(port), "--pidfile", str(pid), *cache],
            cwd=PFWORK,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{exe} did not start: {done.stdout}{done.stderr}")

    def stop(_: subprocess.Popen[bytes] | None) -> None:
        try:
            master = int(pid.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            master = None
        subprocess.run([exe, "--kill", "--pidfile", str(pid), *args], check=False)
        deadline = time.monotonic() + 10
        while master is not None and time.monotonic() < deadline:
            try:
                os.kill(master, 0)  # a new start refuses while the old master lives
            except ProcessLookupError:
                break
            time.sleep(0.1)

    return start, stop


def targets(redis_url: str, peers: bool) -> list[Target]:
    found = [
        Target(
            "minimal",
            lambda p: _spawn(
                [PY, str(HERE / "minimal_daemon.py"), f"127.0.0.1:{p}"], "minimal.log"
            ),
        ),
        Target("relayops-sqlite", relayops(f"sqlite:{WORK / 'counters.sqlite'}")),
        Target("relayops-redis", relayops(redis_url)),
    ]
    if not peers:
        return found
    rules = PFWORK / "postfwd.cf"
    # Same job as relayops: count each recipient per SASL login per day, refuse past a limit.
    rules.write_text(
        "id=QUOTA; protocol_state==RCPT; sasl_username=~.; "
        "action=rate(sasl_username/1000000000/86400/452 4.7.1 daily quota reached)\n"
    )
    # Net::Server's default group is "nobody", which Debian does not have: without
    # --group nogroup postfwd exits silently (its log goes to syslog).
    common = ["-f", str(rules), "--interface", "127.0.0.1", "--nodns", "--cache", "0"]
    common += ["--user", "nobody", "--group", "nogroup", "--perfmon"]
    for exe, extra in (
        ("postfwd1", []),  # one process, Net::Server::Multiplex
        ("postfwd2", []),  # pre-forking children and a cache process
    ):
        if shutil.which(exe):
            found.append(
                Target(exe, *postfwd(exe, [*common, *extra]), restart_per_run=exe == "postfwd2")
            )
    prl = ROOT / "bench" / "work" / "prl-venv" / "bin" / "policyd-rate-limit"
    if prl.exists():

        def start_prl(p: int) -> subprocess.Popen[bytes]:
            cfg = WORK / "policyd-rate-limit.yaml"
            cfg.write_text(
                json.dumps(  # YAML is a superset of JSON
                    {
                        "debug": False,
                        "user": "root",
                        "group": "root",
                        "pidfile": str(WORK / "prl.pid"),
                        "backend": 0,
                        "sqlite_config": {"database": str(WORK / "prl.sqlite3")},
                        "SOCKET": ["127.0.0.1", p],
                        "socket_permission": 438,
                        "limits": [[1000000000, 86400]],
                        "limits_by_id": {},
                        "sql_limits_by_id": "",
                        "limit_by_sasl": True,
                        "limit_by_sender": False,
                        "limit_by_ip": False,
                        "limited_networks": [],
                        "success_action": "dunno",
                        "fail_action": "defer_if_permit Rate limit reach, retry later",
                        "db_error_action": "dunno",
                        "report": False,
                        "delay_to_close": 300,
                        "count_mode": 0,  # count each RCPT, as relayops does
                    }
                )
            )
            return _spawn([str(prl), "-f", str(cfg)], "policyd-rate-limit.log")

        db = WORK / "prl.sqlite3"
        found.append(
            Target("policyd-rate-limit", start_prl, restart_per_run=True, delete_before_run=(db,))
        )
    return found


def load(port: int, connections: int, requests: int) -> dict[str, object]:
    out = subprocess.run(
        [
            PY,
            str(HERE / "loadgen.py"),
            "--connect",
            f"127.0.0.1:{port}",
            "--connections",
            str(connections),
            "--requests",
            str(requests),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
    result: dict[str, object] = json.loads(out.stdout)
    return result


def median(runs: list[dict[str, object]], key: str) -> float:
    values = [float(r[key]) for r in runs if key in r]  # type: ignore[arg-type]
    return statistics.median(values) if values else float("nan")


def report(
    results: dict[str, dict[int, list[dict[str, object]]]],
    many: dict[str, object],
    meta: dict[str, object],
) -> str:
    lines = [
        "# policyd benchmark",
        "",
        "Generated by `bench/policyd/run.py`; raw runs in `results.json`. Each cell is the",
        "median of the rounds; the load generator keeps one request in flight per persistent",
        "connection (like Postfix's smtpd) and sends RCPT requests of one SASL login with",
        f"{CUSTOMERS} customers in the rules. Daemon, load generator and Redis share the machine.",
        "",
        f"- date: {meta['date']}; machine: {meta['machine']}",
        f"- requests per run: {meta['requests']}; rounds: {meta['rounds']}; "
        f"load average before: {meta['loadavg']}",
        "",
        "`× minimal` is the ratio of medians; `paired` the median of the per-round ratios",
        "(each round runs every daemon back to back, so a pair shares the machine's load).",
        "",
        "| daemon | conns | req/s | × minimal | paired | p50 ms | p99 ms | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for conns in sorted({c for per in results.values() for c in per}):
        base = median(results["minimal"][conns], "rps")
        for name, per in results.items():
            runs = per.get(conns, [])
            rps = median(runs, "rps")
            answers: dict[str, int] = {}
            for r in runs:
                for a, n in dict(r.get("answers", {})).items():  # type: ignore[call-overload]
                    answers[a] = answers.get(a, 0) + n
            errors = [r["error"] for r in runs if "error" in r]
            shown = ", ".join(f"{a.removeprefix('action=')[:40]} ×{n}" for a, n in answers.items())
            pairs = [
                float(r["rps"]) / float(m["rps"])  # type: ignore[arg-type]
                for r, m in zip(runs, results["minimal"][conns], strict=False)
                if "rps" in r and "rps" in m
            ]
            paired = statistics.median(pairs) if pairs else float("nan")
            lines.append(
                f"| {name} | {conns} | {rps:,.0f} | {rps / base:.2f} | {paired:.2f} | "
                f"{median(runs, 'p50_ms'):.3f} | {median(runs, 'p99_ms'):.3f} | "
                f"{shown or errors} |"
            )
    lines += [
        "",
        "## What runs",
        "",
        "- **minimal**: `minimal_daemon.py`, asyncio.Protocol, parses each request into a dict",
        "  and answers DUNNO; the reference.",
        "- **relayops-sqlite / relayops-redis**: `relayops policyd` with a quota of 10^9, so",
        "  every request is counted and answered DUNNO; Redis on loopback, no persistence.",
        "- **postfwd1 / postfwd2** (Debian postfwd 1.35): one rule counting RCPT requests per",
        "  SASL login per day, `rate(sasl_username/1000000000/86400/452 ...)`, with",
        "  `--nodns --cache 0 --perfmon`; counters in memory only, not persisted.",
        "- **policyd-rate-limit** 1.2.0 (PyPI, own venv under bench/work/): SQLite backend,",
        "  `count_mode: 0` (each RCPT counted, as relayops), one row per recipient; its",
        "  per-request cost grows with the rows of the day, so it is restarted empty",
        "  before each run.",
        "- postfwd2's master exited after about 80,000 requests in each full run (no log",
        "  without syslog): it is restarted before each run.",
        "- The load generator, the daemons and Redis share the machine's cores with",
        "  whatever else runs on it (see the load average above).",
    ]
    lines += ["", "## Targets (8 connections)", ""]
    at8 = {name: per.get(8, []) for name, per in results.items()}
    if at8.get("minimal"):
        base = median(at8["minimal"], "rps")
        for name, floor in (("relayops-sqlite", 0.5), ("relayops-redis", 0.35)):
            if at8.get(name):
                ratio = median(at8[name], "rps") / base
                p99 = median(at8[name], "p99_ms")
                lines.append(
                    f"- {name}: {ratio:.2f}× the minimal daemon, ratio of medians (target ≥ "
                    f"{floor}×: {'met' if ratio >= floor else 'NOT met'}); median p99 {p99:.2f} ms "
                    f"(target ≤ 2 ms: {'met' if p99 <= 2 else 'NOT met'})"
                )
    lines += [
        "",
        "## 500 concurrent persistent connections",
        "",
        "| daemon | req/s | p50 ms | p99 ms | answers |",
        "|---|---:|---:|---:|---|",
    ]
    for name, r in many.items():
        if isinstance(r, dict) and "rps" in r:
            shown = ", ".join(f"{a.removeprefix('action=')} ×{n}" for a, n in r["answers"].items())
            lines.append(f"| {name} | {r['rps']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | {shown} |")
        else:
            lines.append(f"| {name} | failed: {r} | | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="1,8,64")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite RESULTS.md from results.json"
    )
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads((args.out.parent / "results.json").read_text())
        runs = {n: {int(c): r for c, r in per.items()} for n, per in saved["runs"].items()}
        write_report(args.out, report(runs, saved["500"], saved["meta"]))
        return

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    shutil.rmtree(PFWORK, ignore_errors=True)
    PFWORK.mkdir(mode=0o755)
    write_rules(WORK / "policy.json")
    redis_port = free_port()
    redis = _spawn(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(WORK),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        "redis.log",
    )
    wait_port(redis_port)
    all_targets = targets(f"redis://127.0.0.1:{redis_port}/0", not args.no_peers)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        "requests": args.requests,
        "rounds": args.rounds,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    results: dict[str, dict[int, list[dict[str, object]]]] = {t.name: {} for t in all_targets}
    many: dict[str, object] = {}
    try:
        for t in all_targets:
            t.port = free_port()
            t.proc = t.start(t.port)
            wait_port(t.port)
        for conns in [int(c) for c in args.connections.split(",")]:
            for rnd in range(args.rounds):
                order = all_targets if rnd % 2 == 0 else list(reversed(all_targets))
                for t in order:
                    if t.restart_per_run:
                        t.stop(t.proc)
                        for path in t.delete_before_run:
                            path.unlink(missing_ok=True)
                        wait_port_free(t.port)
                        t.proc = t.start(t.port)
                        wait_port(t.port)
                    r = load(t.port, conns, args.requests)
                    results[t.name].setdefault(conns, []).append(r)
                    print(
                        t.name,
                        conns,
                        rnd,
                        {k: v for k, v in r.items() if k != "answers"},
                        flush=True,
                    )
        for t in all_targets:
            if t.name.startswith("relayops") or t.name == "minimal":
                many[t.name] = load(t.port, 500, max(args.requests, 20000))
                print("500 connections", t.name, many[t.name], flush=True)
    finally:
        for t in all_targets:
            t.stop(t.proc)
        _terminate(redis)
    (args.out.parent / "results.json").write_text(
        json.dumps({"meta": meta, "runs": results, "500": many}, indent=1)
    )
    write_report(args.out, report(results, many, meta))
    print(f"wrote {args.out}")


def write_report(out: Path, text: str) -> None:
    """Write RESULTS.md, keeping the sections burst.py and fault.py wrote there."""
    kept = sections(out.read_text()) if out.exists() else []
    out.write_text("\n".join([text, *kept]))


if __name__ == "__main__":
    main()
