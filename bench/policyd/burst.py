"""Burst benchmark: 1,000 customers rendered from a generated repo, every answer checked.

    .venv/bin/python bench/policyd/burst.py [--requests 20000] [--rounds 3] [--connections 8,64]

`bench/gen_repo.py` writes 1,000 customers (the example's plans, policies and
inventory); `relayops render` compiles them and the policy.json of the host
serving all of them is the daemons' rules. Quotas are chosen so that customers
cross them during the burst: with R = requests / 1000 recipients per customer,
customer n has quota 10 (n % 4 == 0), R (n % 4 == 1: exactly at the quota),
R - 1 (n % 4 == 2) or its plan's (1,000 or 10,000). The load generator sends R
recipients from each customer's first login over 8, then 64 persistent
connections, each request exactly once, interleaved across customers.

Every run starts from empty counters (each daemon restarted on a new SQLite
file; Redis flushed), and every answer is counted by kind: DUNNO, 452 (quota,
per customer, from the reply text), 4.3.0 tempfail, other. A run is exact when
each customer got exactly min(R, quota) DUNNO and the rest 452, nothing else,
and the store holds exactly min(R, quota) for each customer after the run.
Writes burst.json and the `burst` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from run import (
    HERE,
    PY,
    ROOT,
    WORK,
    _spawn,
    _terminate,
    free_port,
    wait_port,
    wait_port_free,
)
from sections import replace_section

sys.path.insert(0, str(ROOT / "bench"))
from gen_repo import generate

from relayops.model.secrets import encrypted_key_source, public_key_source

CUSTOMERS = 1000
BURST = WORK / "burst"
QUOTA_452 = re.compile(r"452 4\.7\.1 daily quota of (\d+) reached for (\S+);")


def quota_for(n: int, per_customer: int) -> int | None:
    """The quota_override of customer n (None: its plan's quota, far above the burst)."""
    return {0: 10, 1: per_customer, 2: per_customer - 1}.get(n % 4)


def build_rules(per_customer: int) -> tuple[Path, dict[str, int]]:
    """Generate and render the repo; the rules file and each customer's day limit."""
    repo, out = BURST / "repo", BURST / "rendered"
    overrides = {n: q for n in range(CUSTOMERS) if (q := quota_for(n, per_customer)) is not None}
    generate(repo, CUSTOMERS, overrides)
    # validate wants each selector's key files to exist; render only names them (the
    # deploy reads them), so empty stand-ins do for the rules: no 3,000 RSA keys.
    dkim = repo / "secrets" / "dkim"
    dkim.mkdir(parents=True, exist_ok=True)
    for domain in re.findall(
        r"- name: (\S+)", "".join(p.read_text() for p in (repo / "customers").glob("*.yaml"))
    ):
        for part in (encrypted_key_source(domain, "s1"), public_key_source(domain, "s1")):
            (repo / part).touch()
    identity = repo / "lab" / "age-identity.lab-only.txt"  # named by inventory/lab.py
    identity.parent.mkdir(exist_ok=True)
    identity.touch()
    subprocess.run(
        [PY, "-m", "relayops", "render", "--repo", str(repo), "--out", str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    best = max(
        out.glob("*/etc/relayops/policy.json"),
        key=lambda p: len(json.loads(p.read_text())["customers"]),
    )
    customers = json.loads(best.read_text())["customers"]
    if len(customers) != CUSTOMERS:
        raise SystemExit(f"{best}: {len(customers)} customers, expected {CUSTOMERS}")
    rules = BURST / "policy.json"
    rules.write_text(best.read_text())
    limits = {}
    for cid, c in customers.items():
        if c["warmup"] or c["status"] != "active":
            raise SystemExit(f"{cid}: the burst expects active customers without warm-up")
        limits[cid] = c["daily_quota"]
    return rules, limits


def expected(limits: dict[str, int], per_customer: int) -> tuple[dict[str, int], dict[str, int]]:
    """Per customer: recipients accepted (DUNNO, counted) and refused with 452."""
    dunno = {cid: min(per_customer, q) for cid, q in limits.items()}
    return dunno, {cid: per_customer - n for cid, n in dunno.items() if per_customer > n}


def classify(answers: dict[str, int]) -> tuple[Counter[str], Counter[str]]:
    """Answers by kind, and the 452s by customer."""
    kinds: Counter[str] = Counter()
    per_customer: Counter[str] = Counter()
    for text, n in answers.items():
        action = text.removeprefix("action=")
        if action == "DUNNO":
            kinds["DUNNO"] += n
        elif m := QUOTA_452.match(action):
            kinds["452 quota"] += n
            per_customer[m.group(2)] += n
        elif " 4.3.0 " in action:
            kinds["4.3.0 tempfail"] += n
        else:
            kinds["other"] += n
    return kinds, per_customer


def sqlite_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT customer, sum(count) FROM counters GROUP BY customer")
        return {cid: int(n) for cid, n in rows}
    finally:
        conn.close()


def redis_counts(port: int) -> dict[str, int]:
    import redis

    r = redis.Redis(port=port, decode_responses=True)
    counts: Counter[str] = Counter()
    for key in r.scan_iter("relayops:count:*", count=1000):
        counts[key.split(":")[2]] += int(r.get(key) or 0)
    return dict(counts)


class Daemon:
    """One daemon of the comparison; `fresh()` restarts it on empty counters.

    ``relayops-sqlite@REF`` / ``relayops-redis@REF``: the daemon of another commit (`--base`).
    """

    def __init__(
        self, name: str, rules: Path, redis_port: int, profile: Path | None = None
    ) -> None:
        self.name, self.rules, self.redis_port = name, rules, redis_port
        self.profile = profile  # write cProfile stats of each relayops run there
        self.sqlite = name.startswith("relayops-sqlite")
        self.src = BURST / "base" / "src" if "@" in name else ROOT / "src"
        self.port = free_port()
        # In file names: `--base h/warmup` names a branch with a slash.
        self.file_name = re.sub(r"[@/]", "-", name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.run = 0

    @property
    def db(self) -> Path:
        return BURST / f"counters-{self.file_name}-{self.run}.sqlite"

    def fresh(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
            wait_port_free(self.port)
        self.run += 1
        if self.name == "minimal":
            cmd = [PY, str(HERE / "minimal_daemon.py"), f"127.0.0.1:{self.port}"]
        else:
            store = f"sqlite:{self.db}" if self.sqlite else f"redis://127.0.0.1:{self.redis_port}/0"
            if self.name.startswith("relayops-redis"):
                subprocess.run(
                    ["redis-cli", "-p", str(self.redis_port), "FLUSHDB"],
                    check=True,
                    capture_output=True,
                )
            cmd = [PY, "-m", "relayops", "policyd"]
            if self.profile is not None:  # stats written at the clean stop (SIGTERM)
                out = self.profile / f"{self.file_name}-{self.run}.prof"
                cmd[1:1] = ["-m", "cProfile", "-o", str(out)]
            cmd += ["--rules", str(self.rules), "--listen", f"127.0.0.1:{self.port}"]
            cmd += ["--store", store]
        self.proc = _spawn(cmd, f"burst-{self.file_name}.log", self.src)
        wait_port(self.port)

    def cpu_seconds(self) -> float:
        """CPU time the daemon (all its threads) has used: a figure the machine's load moves
        much less than throughput, since other processes only take turns on the cores."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stored(self) -> dict[str, int] | None:
        """Counters the store holds after a clean stop (None for the minimal daemon)."""
        if self.name == "minimal":
            return None
        _terminate(self.proc)
        self.proc = None
        wait_port_free(self.port)
        if self.sqlite:
            return sqlite_counts(self.db)
        return redis_counts(self.redis_port)


def load(port: int, connections: int, requests: int) -> dict[str, object]:
    out = subprocess.run(
        [
            *(PY, str(HERE / "loadgen.py"), "--connect", f"127.0.0.1:{port}"),
            *("--connections", str(connections), "--requests", str(requests)),
            *("--logins", str(CUSTOMERS), "--login", "c{n}-u0", "--domain", "d0.c{n}.example"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr.strip()[-500:]}")
    result: dict[str, object] = json.loads(out.stdout)
    return result


def check(
    name: str,
    result: dict[str, object],
    stored: dict[str, int] | None,
    want_dunno: dict[str, int],
    want_452: dict[str, int],
) -> dict[str, object]:
    """Counts by kind and whether the run is exact (see the module doc)."""
    kinds, per_customer = classify(result["answers"])  # type: ignore[arg-type]
    row: dict[str, object] = {k: v for k, v in result.items() if k != "answers"}
    row["kinds"] = dict(kinds)
    if name == "minimal":
        row["exact"] = None  # no quotas: the throughput reference only
        return row
    problems = []
    if kinds["DUNNO"] != sum(want_dunno.values()):
        problems.append(f"DUNNO {kinds['DUNNO']} != {sum(want_dunno.values())}")
    if dict(per_customer) != want_452:
        wrong = sorted(set(per_customer.items()) ^ set(want_452.items()))[:5]
        problems.append(f"452 per customer differs: {wrong}")
    if kinds["4.3.0 tempfail"] or kinds["other"]:
        problems.append(f"tempfail {kinds['4.3.0 tempfail']}, other {kinds['other']}")
    if stored is not None and stored != {c: n for c, n in want_dunno.items() if n}:
        wrong = sorted(set(stored.items()) ^ set(want_dunno.items()))[:5]
        problems.append(f"stored counters differ: {wrong}")
    row["exact"] = not problems
    row["problems"] = problems
    return row


def report(runs: dict[str, dict[int, list[dict[str, object]]]], meta: dict[str, object]) -> str:
    want = meta["expected"]
    assert isinstance(want, dict)
    lines = [
        "## Burst: 1,000 customers, 1,000 logins, quotas crossed (`burst.py`)",
        "",
        f"- date: {meta['date']}; machine: {meta['machine']}; load average before: "
        f"{meta['loadavg']}, after: {meta.get('loadavg_after', '?')} (other jobs share the "
        "machine: throughput and latency move with them, CPU µs/req much less)",
        f"- {meta['requests']} RCPT requests per run, {meta['per_customer']} per customer from "
        f"its first login, interleaved; {meta['rounds']} rounds; each run from empty counters.",
        f"- rules: `bench/gen_repo.py` 1,000 customers rendered by `relayops render`; quotas 10 / "
        f"{meta['per_customer']} / {int(str(meta['per_customer'])) - 1} / the plan's, by "
        f"customer number mod 4. Expected in every run: DUNNO ×{want['DUNNO']}, 452 "
        f"×{want['452 quota']} (per customer, from the reply text), nothing else; the store then "
        "holds each customer's DUNNO count exactly.",
        "",
        "| daemon | conns | req/s | × minimal | paired | p50 ms | p99 ms | CPU µs/req "
        "| DUNNO | 452 quota | 4.3.0 tempfail | other | exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for conns in sorted({c for per in runs.values() for c in per}):
        base_runs = runs["minimal"][conns]
        base = statistics.median(float(str(r["rps"])) for r in base_runs)
        for name, per in runs.items():
            rs = per.get(conns, [])
            if not rs:
                continue

            def med(key: str, rs: list[dict[str, object]] = rs) -> float:
                return statistics.median(float(str(r[key])) for r in rs)

            pairs = [
                float(str(r["rps"])) / float(str(r.get("pair_rps", m["rps"])))
                for r, m in zip(rs, base_runs, strict=False)
            ]
            kinds: Counter[str] = Counter()
            for r in rs:
                kinds.update(r["kinds"])  # type: ignore[arg-type]
            exact = [r["exact"] for r in rs]
            shown = "—" if exact[0] is None else f"{sum(bool(e) for e in exact)}/{len(exact)} runs"
            lines.append(
                f"| {name} | {conns} | {med('rps'):,.0f} | {med('rps') / base:.2f} | "
                f"{statistics.median(pairs):.2f} | {med('p50_ms'):.3f} | {med('p99_ms'):.3f} | "
                f"{med('cpu_us_per_request'):.1f} | "
                + " | ".join(
                    str(kinds[k]) for k in ("DUNNO", "452 quota", "4.3.0 tempfail", "other")
                )
                + f" | {shown} |"
            )
    lines += [
        "",
        "Answer counts are summed over the runs (the minimal daemon runs once per pair).",
        "`× minimal` is the ratio of medians, `paired` the median of the per-pair ratios: in",
        "each round every relayops daemon runs right next to a run of the minimal daemon,",
        "which goes first in every other pair (each run from a freshly started daemon).",
        "`CPU µs/req`: the daemon's CPU time (all threads, /proc) over the run per request, the",
        "median of the rounds; it shows the cost of the work itself when other processes load",
        "the machine and move the throughput figures.",
    ]

    def med(rs: list[dict[str, object]], key: str) -> float:
        return statistics.median(float(str(r[key])) for r in rs)

    def paired(rs: list[dict[str, object]], key: str) -> float:
        return statistics.median(
            float(str(r[key])) / float(str(r[f"pair_{key}"])) for r in rs if f"pair_{key}" in r
        )

    def tempfails(rs: list[dict[str, object]]) -> int:
        return sum(int(dict(r["kinds"]).get("4.3.0 tempfail", 0)) for r in rs)  # type: ignore[call-overload]

    for name, per in runs.items():
        if "@" not in name:
            continue
        lines.append("")
        for conns, rs in sorted(per.items()):
            mine = runs[name.partition("@")[0]].get(conns, [])
            lines.append(
                f"- Before/after at {conns} connections: `{name}` (before this change) "
                f"{paired(rs, 'rps'):.2f}× the minimal paired, "
                f"{med(rs, 'cpu_us_per_request'):.1f} CPU µs/req, answered 4.3.0 "
                f"{tempfails(rs)} times ({sum(bool(r['exact']) for r in rs)}"
                f"/{len(rs)} runs exact); this tree {paired(mine, 'rps'):.2f}× paired, "
                f"{med(mine, 'cpu_us_per_request'):.1f} CPU µs/req, {tempfails(mine)} times "
                f"({sum(bool(r['exact']) for r in mine)}/{len(mine)} runs exact)."
            )

    lines.append("")
    targets = {"relayops-sqlite": ("SQLite", 0.7), "relayops-redis": ("Redis", 0.5)}
    for name, (label, want) in targets.items():
        for conns, at in sorted(runs.get(name, {}).items()):
            ratio = med(at, "rps") / med(runs["minimal"][conns], "rps")
            pair = paired(at, "rps") if any("pair_rps" in r for r in at) else ratio
            p99 = med(at, "p99_ms")
            ok = "met" if min(ratio, pair) >= want else "NOT met"
            lines.append(
                f"- Targets, {label} at {conns} connections: {ratio:.2f}× the minimal daemon "
                f"(ratio of medians), {pair:.2f}× paired (≥ {want}×: {ok}); p99 {p99:.2f} ms"
                + (f" (≤ 2 ms: {'met' if p99 <= 2 else 'NOT met'})" if conns == 8 else "")
                + f"; 4.3.0 answers: {tempfails(at)} "
                f"(0: {'met' if not tempfails(at) else 'NOT met'})"
                + (
                    f"; CPU per request {paired(at, 'cpu_us_per_request'):.2f}× the "
                    "minimal's (paired)."
                    if any("pair_cpu_us_per_request" in r for r in at)
                    else "."
                )
            )
    cpu = {
        name: (med(per[8], "cpu_us_per_request"), med(per[8], "rps"))
        for name, per in runs.items()
        if 8 in per
    }
    if "minimal" in cpu and "relayops-sqlite" in cpu:
        lines += [
            "",
            "At 8 connections the daemons are CPU-bound on this shared 2-core machine (the load "
            "generator and other jobs take the other core): relayops spends "
            f"{cpu['relayops-sqlite'][0]:.0f} µs of CPU per request (parsing, rules, refusal "
            f"log lines, notices, the store) against the minimal daemon's {cpu['minimal'][0]:.0f}"
            + "".join(
                f"; `{n}`: {c:.0f} µs, {r / cpu['minimal'][1]:.2f}× the minimal"
                for n, (c, r) in cpu.items()
                if "@" in n
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="8,64")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument(
        "--base",
        metavar="REF",
        help="also run the SQLite daemon of this git commit (e.g. main), for a before/after",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the relayops daemons under cProfile, stats into DIR (slows them: figures "
        "of such a run are for finding the hot path, not for RESULTS.md)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads((HERE / "burst.json").read_text())
        runs = {n: {int(c): r for c, r in per.items()} for n, per in saved["runs"].items()}
        replace_section(args.out, "burst", report(runs, saved["meta"]))
        return
    per_customer, rest = divmod(args.requests, CUSTOMERS)
    if rest or per_customer < 12:
        raise SystemExit(f"--requests must be a multiple of {CUSTOMERS}, at least 12,000")
    BURST.mkdir(parents=True, exist_ok=True)
    for old in BURST.glob("counters-*"):
        old.unlink()
    rules, limits = build_rules(per_customer)
    want_dunno, want_452 = expected(limits, per_customer)
    redis_port = free_port()
    redis = _spawn(
        [
            *("redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"),
            *("--dir", str(BURST), "--save", "", "--appendonly", "no"),
        ],
        "burst-redis.log",
    )
    wait_port(redis_port)
    names = ["minimal", "relayops-sqlite"] + ([] if args.no_redis else ["relayops-redis"])
    if args.base:
        base = BURST / "base"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.base, "src"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        names.append(f"relayops-sqlite@{args.base}")
        if not args.no_redis:
            names.append(f"relayops-redis@{args.base}")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.out = args.profile / "RESULTS.md"  # a profiled run's figures are not the results
        args.out.write_text("<!-- section:burst -->\n<!-- /section:burst -->\n")
    daemons = [Daemon(n, rules, redis_port, args.profile) for n in names]
    meta: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "requests": args.requests,
        "per_customer": per_customer,
        "rounds": args.rounds,
        "expected": {"DUNNO": sum(want_dunno.values()), "452 quota": sum(want_452.values())},
    }
    runs: dict[str, dict[int, list[dict[str, object]]]] = {d.name: {} for d in daemons}
    minimal, others = daemons[0], daemons[1:]

    def measure(d: Daemon, conns: int) -> dict[str, object]:
        d.fresh()
        cpu = d.cpu_seconds()
        result = load(d.port, conns, args.requests)
        cpu = d.cpu_seconds() - cpu
        result["cpu_us_per_request"] = round(cpu / args.requests * 1e6, 1)
        return check(d.name, result, d.stored(), want_dunno, want_452)

    try:
        for conns in [int(c) for c in args.connections.split(",")]:
            for rnd in range(args.rounds):
                # Pair by pair: each relayops run right next to a run of the minimal
                # daemon, which goes first in every other pair, so the pair's ratio
                # compares two runs under the same load of the machine.
                for i, d in enumerate(others):
                    pair = (minimal, d) if (rnd + i) % 2 == 0 else (d, minimal)
                    rows = {x.name: measure(x, conns) for x in pair}
                    rows[d.name]["pair_rps"] = rows["minimal"]["rps"]
                    rows[d.name]["pair_cpu_us_per_request"] = rows["minimal"]["cpu_us_per_request"]
                    for name, row in rows.items():
                        runs[name].setdefault(conns, []).append(row)
                        print(name, conns, rnd, row, flush=True)
    finally:
        for d in daemons:
            _terminate(d.proc)
        _terminate(redis)
    meta["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    raw = (args.profile or args.out.parent) / "burst.json"  # next to the RESULTS.md written
    raw.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    replace_section(args.out, "burst", report(runs, meta))
    print(f"wrote the burst section of {args.out}")
    mine = [r for n, per in runs.items() if "@" not in n for rs in per.values() for r in rs]
    if any(r["exact"] is False for r in mine):
        sys.exit(1)  # this tree's daemons answered wrong (the --base one is only compared)


if __name__ == "__main__":
    main()
