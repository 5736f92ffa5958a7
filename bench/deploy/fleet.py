"""The fleet at 2, 5, 10 and 20 relays: deploy times, pair by pair, and one quota shared by
every daemon through Sentinel.

    relayops lab up --index 1 --relays 20          # under the lab session lock
    flock /tmp/relayops-lab-session.lock .venv/bin/python bench/deploy/fleet.py \
        [--sizes 2,5,10,20] [--rounds 5] [--out FILE.json]

The fleet lab (index 1, 198.18.1.0/24; fleet_lab.py) holds one copy of the example
repository per size N, its inventory naming relays 1..N, all with the counters behind
Sentinel on relays 1-3 (a relay's compiled files are the same whatever N: the copies
differ only in which relays they deploy). Each time is the whole command,
`python -m relayops deploy --repo repo-N --inventory repo-N/inventory/lab.py`, from its
start to its exit (validation and compilation included), on a monotonic clock.

1. first deploy of the largest size: canary (relay 1 alone), then the others;
2. no-change redeploy: `--rounds` rounds, each deploying every size once, the order
   rotating from round to round; a size's ratio is taken against the 2-relay deploy of
   the same round, and the median of those per-round ratios is reported;
3. a one-customer change (acme's quota_override, a new value each deploy, so every
   relay of the inventory gets one changed policy.json): the same rounds and ratios;
4. umbrella's daily quota (700) spent through 3 and then through 20 daemons at once,
   counted in the Redis primary the daemons find through Sentinel: exactly 700 accepted.
Prints one JSON object; the shared lab (index 0) is not touched.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from failover import DATA_PORT, count_keys, primary, wait_ready
from fleet_lab import INDEX, WORK, fresh_repo, publish, redis_cli, write_inventory, write_report
from fleet_quota import spend

from relayops.deploy.runner import ENGINE_ROOT
from relayops.lab import state as lab_state
from relayops.lab.topology import Topology

QUOTA = 700  # umbrella's daily quota during the shared-quota runs
ASK = 1200  # questions in all, spread over the daemons: more than the quota


def deploy(root: Path, *, limit: tuple[str, ...] = ()) -> dict[str, Any]:
    """The whole `relayops deploy` command for `root`, timed from outside."""
    argv = [sys.executable, "-m", "relayops", "deploy", "--repo", str(root)]
    argv += ["--inventory", str(root / "inventory" / "lab.py")]
    for host in limit:
        argv += ["--limit", host]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ENGINE_ROOT)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"deploy of {root} failed:\n{(done.stdout + done.stderr)[-6000:]}")
    operations = (done.stdout + done.stderr).count("--> Starting operation:")
    return {"seconds": round(seconds, 3), "operations": operations}


def set_acme_quota(root: Path, value: int | None) -> None:
    path = root / "customers" / "acme.yaml"
    lines = [x for x in path.read_text().splitlines(keepends=True) if "quota_override" not in x]
    text = "".join(lines)
    if value is not None:
        text = text.replace("plan: business\n", f"plan: business\nquota_override: {value}\n")
    path.write_text(text)


def rounds(
    repos: dict[int, Path], count: int, before: Any = None
) -> dict[int, list[dict[str, Any]]]:
    """`count` rounds over every size, order rotating; `before(size, n)` prepares a deploy."""
    sizes = sorted(repos)
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for r in range(count):
        order = sizes[r % len(sizes) :] + sizes[: r % len(sizes)]
        for n in order:
            if before is not None:
                before(n)
            runs[n].append(deploy(repos[n]))
    return runs


def summary(runs: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    base = min(runs)
    out: dict[str, Any] = {}
    for n, rows in runs.items():
        seconds = [row["seconds"] for row in rows]
        ratios = [a["seconds"] / b["seconds"] for a, b in zip(rows, runs[base], strict=True)]
        out[str(n)] = {
            "seconds": seconds,
            "median_s": round(statistics.median(seconds), 3),
            "operations": sorted({row["operations"] for row in rows}),
            f"paired_ratio_vs_{base}": round(statistics.median(ratios), 2),
            "ratios": [round(x, 2) for x in ratios],
        }
    return out


def shared_quota(topo: Topology, root: Path, daemons: int) -> dict[str, Any]:
    """umbrella's quota spent through `daemons` daemons at once (ASK questions in all)."""
    address = primary(topo, 1)
    redis_cli(topo, 1, address, DATA_PORT, ["DEL", *count_keys("umbrella")])
    each = ASK // daemons
    started = time.monotonic()
    answers = spend([topo.netns(r) for r in topo.relays[:daemons]], "umbrella", each)
    asked = each * daemons
    return {
        "daemons": daemons,
        "through": f"Sentinel (primary {address})",
        "quota": QUOTA,
        "asked": asked,
        "answers": dict(answers),
        "exact": answers == {"dunno": QUOTA, "quota_452": asked - QUOTA},
        "seconds": round(time.monotonic() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2,5,10,20")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    state = lab_state.load(INDEX)
    if state is None or state.relays < max(sizes):
        raise SystemExit(f"relayops lab up --index {INDEX} --relays {max(sizes)} first")
    topo = Topology(index=INDEX, relay_count=state.relays)
    repos = {n: fresh_repo(WORK / f"repo-{n}") for n in sizes}
    for n, root in repos.items():
        write_inventory(root, topo, n)
    largest = repos[max(sizes)]
    publish(largest, topo)  # the DNS of every relay (each write_inventory published its own)
    out: dict[str, Any] = {"sizes": sizes, "rounds": args.rounds}
    names = [r.fqdn for r in topo.relays[: max(sizes)]]
    out["first_deploy"] = {
        "canary": deploy(largest, limit=(names[0],)),
        "rest": deploy(largest, limit=tuple(names[1:])),
    }
    out["sentinels_ready_s"] = wait_ready(topo)
    out["settle"] = {n: deploy(root) for n, root in repos.items()}  # every copy converged
    out["no_change"] = summary(rounds(repos, args.rounds))
    print(json.dumps({"no_change": out["no_change"]}), flush=True)
    value = iter(range(9000, 10000))
    out["one_customer_change"] = summary(
        rounds(repos, args.rounds, lambda n: set_acme_quota(repos[n], next(value)))
    )
    print(json.dumps({"one_customer_change": out["one_customer_change"]}), flush=True)
    umbrella = largest / "customers" / "umbrella.yaml"
    umbrella.write_text(
        umbrella.read_text().replace("quota_override: 15000", f"quota_override: {QUOTA}")
    )
    deploy(largest)
    out["shared_quota"] = [shared_quota(topo, largest, d) for d in (3, max(sizes))]
    write_report(out, args.out)


if __name__ == "__main__":
    main()
