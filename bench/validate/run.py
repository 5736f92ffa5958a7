"""Benchmark `relayops validate` on a generated 10,000-customer repository.

    .venv/bin/python bench/validate/run.py [--customers 10000] [--runs 3]

Reports the median wall time of the whole command (a fresh process, as CI runs
it) next to a reference measured in the same run: composing every file with
PyYAML's C parser alone, the floor of any read path that keeps positions.
The machine is shared and noisy, so the ratio is the figure that travels.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from gen_repo import generate  # noqa: E402


def reference(repo: Path) -> float:
    start = time.perf_counter()
    for path in sorted((repo / "customers").iterdir()):
        yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return time.perf_counter() - start


def validate(repo: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "relayops"), "validate", "--repo", str(repo)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    repo = ROOT / "bench" / "work" / f"repo-{args.customers}"
    generate(repo, args.customers)
    refs, runs = [], []
    for _ in range(args.runs):  # alternate, so load spikes hit both
        refs.append(reference(repo))
        runs.append(validate(repo))
    ref, run = statistics.median(refs), statistics.median(runs)
    print(f"customers: {args.customers}")
    print(f"reference (C-parser compose only, in-process): median {ref:.2f} s  {refs}")
    print(f"relayops validate (whole command):            median {run:.2f} s  {runs}")
    print(f"ratio validate / reference: {run / ref:.2f}")


if __name__ == "__main__":
    main()
