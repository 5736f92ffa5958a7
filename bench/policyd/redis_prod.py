"""What production Redis costs the daemon: ACL+TLS, and ?wait=1; writes RESULTS-redis.md.

    .venv/bin/python bench/policyd/redis_prod.py [--requests 20000] [--rounds 5]

One primary and one replica (redis-server, loopback, AOF on the primary, the
deploy's rendered config and ACL users; the default user left on for the
reference) run for the whole benchmark, with a plaintext and a TLS port. Four
daemons run side by side: plain (the reference, as RESULTS.md's relayops-redis),
ACL (AUTH only), ACL+TLS, and ACL+TLS+``wait=1``. For 1, 8 and 64 connections
and each round, loadgen.py drives each daemon in turn, the order alternating
between rounds; cells are medians of the rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "src"))

from run import PY, WORK, _spawn, _terminate, free_port, load, wait_port, write_rules  # noqa: E402

from relayops.compile.templates import Templates  # noqa: E402
from relayops.deploy import redis_conf as rc  # noqa: E402
from relayops.labca import issue, new_ca  # noqa: E402

PASSWORDS = rc.RedisPasswords(policyd="bench-policyd", replica="bench-replica", sentinel="bench-s")
CONNECTIONS = (1, 8, 64)


def redis_node(name: str, tls: rc.TlsFiles, replica_of: int | None) -> tuple[int, int]:
    """Start one data node from the deploy's rendered config; (plain port, TLS port)."""
    d = WORK / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    port, tls_port = free_port(), free_port()
    spec = rc.DataNode(
        bind=["127.0.0.1"],
        port=port,
        tls_port=tls_port,
        tls=tls,
        replica_of=("127.0.0.1", replica_of) if replica_of else None,
        aclfile=str(d / "users.acl"),
    )
    # The "plain" reference connects without AUTH: bench-only, the default user is on.
    users = [
        "user default on nopass ~* &* +@all" if u.startswith("user default ") else u
        for u in rc.data_node_users(PASSWORDS)
    ]
    (d / "users.acl").write_text(rc.acl_file(users))
    (d / "relayops.conf").write_bytes(
        Templates().render("/etc/redis/relayops.conf", **rc.data_node_values(spec, PASSWORDS))
    )
    # The replica replicates over the primary's TLS port (tls-replication yes).
    aof = "yes" if replica_of is None else "no"
    (d / "node.conf").write_text(
        f'dir {d}\nlogfile {d}/node.log\nsave ""\nappendonly {aof}\ninclude {d}/relayops.conf\n'
    )
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    procs.append(_spawn([exe, str(d / "node.conf")], f"{name}.out"))
    wait_port(port)
    return port, tls_port


def daemon(name: str, store: str, secret: Path) -> int:
    port = free_port()
    cmd = [PY, "-c", "from relayops.cli import main; main()", "policyd"]
    cmd += ["--rules", str(WORK / "policy.json"), "--listen", f"127.0.0.1:{port}"]
    cmd += ["--store", store]
    if "@" in store:
        cmd += ["--store-password-file", str(secret)]
    procs.append(_spawn(cmd, f"policyd-{name}.log"))
    wait_port(port)
    return port


procs: list[subprocess.Popen[bytes]] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--report-only", action="store_true", help="rewrite from the JSON")
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads((HERE / "results-redis.json").read_text())
        runs = {k: {int(c): v for c, v in by.items()} for k, by in saved["runs"].items()}
        (HERE / "RESULTS-redis.md").write_text(report(runs, saved["meta"]))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    write_rules(WORK / "policy.json")
    now = dt.datetime.now(dt.UTC)
    ca = new_ca(now, name="bench CA")
    pem = issue(ca, ["redis.bench"], ["127.0.0.1"], now)
    tls_dir = WORK / "tls"
    tls_dir.mkdir(exist_ok=True)
    for fname, data in (("ca.pem", ca.cert), ("cert.pem", pem.cert), ("key.pem", pem.key)):
        (tls_dir / fname).write_bytes(data)
    tls = rc.TlsFiles(str(tls_dir / "cert.pem"), str(tls_dir / "key.pem"), str(tls_dir / "ca.pem"))
    secret = WORK / "redis-password"
    secret.write_text(PASSWORDS.policyd + "\n")
    os.chmod(secret, 0o600)
    results: dict[str, dict[int, list[dict[str, object]]]] = {}
    try:
        plain, tls_port = redis_node("redis-primary", tls, None)
        replica, _ = redis_node("redis-replica", tls, tls_port)
        link = redis.Redis(port=replica, username=rc.SENTINEL_USER, password=PASSWORDS.sentinel)
        for _ in range(100):  # WAIT needs the replica in sync
            if link.info("replication").get("master_link_status") == "up":
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the replica did not sync with the primary")
        user = rc.POLICYD_USER
        stores = {
            "plain": f"redis://127.0.0.1:{plain}/0",
            "acl": f"redis://{user}@127.0.0.1:{plain}/0",
            "acl+tls": f"rediss://{user}@127.0.0.1:{tls_port}/0?ca={tls.ca}",
            "acl+tls+wait=1": f"rediss://{user}@127.0.0.1:{tls_port}/0?ca={tls.ca}&wait=1",
        }
        ports = {name: daemon(name, store, secret) for name, store in stores.items()}
        names = list(stores)
        for conns in CONNECTIONS:
            for r in range(args.rounds):
                order = names if r % 2 == 0 else names[::-1]
                for name in order:
                    run = load(ports[name], conns, args.requests)
                    results.setdefault(name, {}).setdefault(conns, []).append(run)
                    print(name, conns, run.get("rps"), run.get("answers"), flush=True)
    finally:
        for p in procs:
            _terminate(p)
    meta = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, CPython {platform.python_version()}, "
        f"Linux {platform.release()}",
        "redis": subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()[2],
        "requests": args.requests,
        "rounds": args.rounds,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    (HERE / "results-redis.json").write_text(json.dumps({"meta": meta, "runs": results}) + "\n")
    (HERE / "RESULTS-redis.md").write_text(report(results, meta))
    print((HERE / "RESULTS-redis.md").read_text())


def _median(runs: list[dict[str, object]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs if key in r)  # type: ignore[arg-type]


def report(results: dict[str, dict[int, list[dict[str, object]]]], meta: dict[str, object]) -> str:
    lines = [
        "# policyd with production Redis: ACL, TLS, WAIT",
        "",
        "Generated by `bench/policyd/redis_prod.py` (raw runs: `results-redis.json`). A primary",
        "(AOF) and a replica on loopback, the deploy's rendered config and ACL users; one",
        "daemon per store URL, all running; medians of the rounds, order alternating.",
        "",
        f"- {meta['date']}; {meta['machine']}; redis {meta['redis']}",
        f"- requests per run: {meta['requests']}; rounds: {meta['rounds']}; "
        f"load after: {meta['load']}",
        "",
        "`× plain` is the ratio of medians; `paired` the median of the per-round ratios (a",
        "round runs the four back to back, so a pair shares the machine's load of the moment).",
        "A load average above the core count means other jobs shared the machine: cells then",
        "vary by ±30 % between runs; read `paired`, and only differences larger than that.",
        "",
        "| store | conns | req/s | × plain | paired | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for conns in CONNECTIONS:
        ref_runs = results["plain"][conns]
        ref = _median(ref_runs, "rps")
        for name, by_conns in results.items():
            runs = by_conns[conns]
            rps = _median(runs, "rps")
            paired = statistics.median(
                float(r["rps"]) / float(p["rps"])  # type: ignore[arg-type]
                for r, p in zip(runs, ref_runs, strict=True)
            )
            lines.append(
                f"| {name} | {conns} | {rps:,.0f} | {rps / ref:.2f} | {paired:.2f} | "
                f"{_median(runs, 'p50_ms'):.3f} | {_median(runs, 'p99_ms'):.3f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
