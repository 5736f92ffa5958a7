"""Benchmark `relayops customer …` edits against `relayops validate` on the same repository.

    .venv/bin/python bench/customer/run.py [--customers 10000] [--runs 3]

An edit validates the repository before and after the change (the second time with
the changed files overlaid in memory), so its floor is about two validations. Each run
measures, in fresh processes as an operator runs them: `validate` (the reference),
`customer set-quota` and `customer add-login` (which also hashes a password).
The machine is shared and noisy, so the ratio to validate is the figure that travels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from gen_repo import generate  # noqa: E402


def timed(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "relayops", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    repo = ROOT / "bench" / "work" / f"repo-{args.customers}"
    generate(repo, args.customers)
    where = ("--repo", str(repo))
    ref, quota, login = [], [], []
    for run in range(args.runs):  # alternate, so load spikes hit all three
        ref.append(timed("validate", *where))
        quota.append(timed("customer", "set-quota", "c00001", str(1500 + run), *where))
        login.append(timed("customer", "add-login", "c00002", f"c00002-bench{run}", *where))
    r = statistics.median(ref)
    print(f"customers: {args.customers}")
    print(f"validate (reference):  median {r:.2f} s  {[round(x, 2) for x in ref]}")
    for name, times in (("customer set-quota", quota), ("customer add-login", login)):
        m = statistics.median(times)
        print(f"{name}:    median {m:.2f} s  {[round(x, 2) for x in times]}  ratio {m / r:.2f}")


if __name__ == "__main__":
    main()
