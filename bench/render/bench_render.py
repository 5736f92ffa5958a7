"""Time `relayops render` on a generated 10,000-customer repository.

    .venv/bin/python bench/render/bench_render.py [--customers 10000] [--runs 3]

Generates the repository with bench/gen_repo.py under bench/work/ (once), then
times the phases in-process (load + validate, compile, write) and the whole
command as a subprocess, which is what an operator or CI waits for.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from relayops.compile import compile_inventory
from relayops.compile.loading import load_frozen
from relayops.compile.render import write_hosts

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / "work"


def generate(customers: int) -> Path:
    repo = WORK / f"render-{customers}"
    if not (repo / "customers").is_dir():
        shutil.rmtree(repo, ignore_errors=True)
        subprocess.run(
            [sys.executable, str(ROOT / "bench/gen_repo.py"), str(repo), "--customers",
             str(customers)],
            check=True,
        )  # fmt: skip
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    repo_dir = generate(args.customers)
    out = WORK / f"render-{args.customers}-out"

    phases: dict[str, list[float]] = {"load+validate": [], "compile": [], "write": []}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = load_frozen(repo_dir)
        t1 = time.perf_counter()
        assert result.repo is not None, result.findings[:5]
        configs = compile_inventory(result.repo, result.repo.inventories["production"])
        t2 = time.perf_counter()
        write_hosts(configs, out)
        t3 = time.perf_counter()
        phases["load+validate"].append(t1 - t0)
        phases["compile"].append(t2 - t1)
        phases["write"].append(t3 - t2)

    command = [str(Path(sys.executable).parent / "relayops"), "render", "--repo", str(repo_dir),
               "--inventory", "production", "--all", "--out", str(out)]  # fmt: skip
    wall: list[float] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall.append(time.perf_counter() - t0)

    repo = result.repo
    domains = sum(len(c.domains) for c in repo.customers.values())
    logins = sum(len(c.users) for c in repo.customers.values())
    size = sum(len(f.content) for c in configs.values() for f in c.files)
    print(f"customers={len(repo.customers)} domains={domains} logins={logins} "
          f"hosts={len(configs)} rendered_bytes={size}")  # fmt: skip
    for name, values in phases.items():
        print(
            f"{name:14s} median {statistics.median(values):6.2f} s  (runs: "
            + ", ".join(f"{v:.2f}" for v in values)
            + ")"
        )
    print(
        f"{'relayops render --all (process)':14s} median {statistics.median(wall):6.2f} s  (runs: "
        + ", ".join(f"{v:.2f}" for v in wall)
        + ")"
    )


if __name__ == "__main__":
    main()
