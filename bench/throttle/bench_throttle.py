"""Measure per-IP × ISP-class throttling on the shared lab (index 0); root only.

    flock /tmp/relayops-lab-session.lock \
        .venv/bin/python bench/throttle/bench_throttle.py [--per-class 60] [--no-deploy]

Deploys this checkout to the lab (unless --no-deploy), then sends `--per-class`
messages to one domain of each class of policies/throttling.yaml and to isp.lab (no
class: the unthrottled reference) from a dedicated-IP customer and a shared-pool
customer of relay1, and compares what the destination host saw with each class's
configuration (relayops.lab.throttle). Prints a table, writes results-<date>.json
beside this file and exits 1 if any measurement is more than 10 % off.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path

from relayops.deploy.runner import run_deploy
from relayops.lab import state as lab_state
from relayops.lab.throttle import measure
from relayops.labca import LabCA
from relayops.loader import load_repo

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--no-deploy", action="store_true")
    args = parser.parse_args()
    found = lab_state.load(0)
    if found is None:
        sys.exit("the lab is not up: relayops lab up")
    repo = load_repo(ROOT).repo
    assert repo is not None, "the example repository does not validate"
    if not args.no_deploy:
        result = run_deploy(ROOT / "inventory" / "lab.py", capture=True)
        if result.returncode != 0:
            sys.exit(f"deploy failed:\n{result.output[-4000:]}")
    results, wall = measure(
        repo=repo,
        topology=found.topology,
        ca_file=LabCA().cert_path,
        per_class=args.per_class,
        progress=lambda text: print(text, file=sys.stderr),
    )
    failures = [f for m in results for f in m.failures(args.per_class)]
    print(f"{'customer':8} {'ip':14} {'domain':12} {'class':10} {'n':>3} {'span s':>7} "
          f"{'every s':>7} {'delay':>5} {'ratio':>5} {'conns':>5} {'limit':>5} {'open':>4} "
          f"{'msg/conn':>8} helo")  # fmt: skip
    for m in results:
        exp = m.expected
        ratio = (
            f"{m.interval_seconds / exp.rate_delay_seconds:.3f}" if exp.rate_delay_seconds else "-"
        )
        print(
            f"{m.customer:8} {m.ip:14} {m.domain:12} {exp.class_name or '(none)':10} "
            f"{m.delivered:3} {m.span_seconds:7.2f} {m.interval_seconds:7.3f} "
            f"{exp.rate_delay_seconds:5} {ratio:>5} {m.max_connections:5} "
            f"{exp.concurrency if exp.concurrency is not None else '-':>5} {m.max_sessions:4} "
            f"{m.max_messages_per_connection:8} {','.join(m.helos)}"
        )
    print(f"wall time from the flush to the last delivery: {wall:.1f} s")
    out = Path(__file__).with_name(f"results-{dt.date.today().isoformat()}.json")
    out.write_text(
        json.dumps(
            {
                "per_class": args.per_class,
                "wall_seconds": round(wall, 1),
                "results": [dataclasses.asdict(m) for m in results],
                "failures": failures,
            },
            indent=2,
        )
        + "\n"
    )
    for failure in failures:
        print("FAIL", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
