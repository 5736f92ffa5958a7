"""A rotated Sentinel password reaches running sentinels on redeploy (fleet lab, index 1).

    flock /tmp/relayops-lab-session.lock .venv/bin/python bench/deploy/sentinel_rollout.py

1. lab up --index 1 --relays 3; a copy of the example repository with counters behind
   Sentinel on the three relays (fleet_lab); first deploy; the sentinels ready.
2. `relayops redis-passwords --rotate relayops-sentinel` in the copy, then a redeploy:
   the data nodes and sentinels restart with the new ACL files, and the deploy sends each
   running sentinel its new auth-pass / sentinel-pass (relayops.deploy.sentinel_settings).
3. Every sentinel again sees the primary (flags `master`: not down, so its new
   auth-pass works), its 2 replicas and the 2 other sentinels, 3 s past
   down-after-milliseconds; then a redeploy with nothing changed runs no operation.
4. lab down --index 1. Prints one JSON object (and writes --out).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from failover import master_info, primary, wait_ready
from fleet import deploy
from fleet_lab import INDEX, SENTINELS, fresh_repo, write_inventory, write_report

from relayops.deploy.runner import ENGINE_ROOT
from relayops.lab import lifecycle
from relayops.lab.topology import Topology


def healthy(topo: Topology) -> dict[str, Any]:
    infos = [master_info(topo, k) for k in range(1, SENTINELS + 1)]
    return {
        "master_flags": [i.get("flags") for i in infos],
        "replicas": [i.get("num-slaves") for i in infos],
        "other_sentinels": [i.get("num-other-sentinels") for i in infos],
    }


def operation_names(root: Path) -> list[str]:
    argv = [sys.executable, "-m", "relayops", "deploy", "--repo", str(root)]
    argv += ["--inventory", str(root / "inventory" / "lab.py")]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ENGINE_ROOT)
    return [
        line.split("--> Starting operation:", 1)[1].strip()
        for line in (done.stdout + done.stderr).splitlines()
        if "--> Starting operation:" in line
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    lifecycle.down(index=INDEX)
    topo = lifecycle.up(relays=SENTINELS, index=INDEX).topology
    try:
        root = fresh_repo()
        write_inventory(root, topo, SENTINELS)
        out["first_deploy"] = deploy(root)
        out["sentinels_ready_s"] = wait_ready(topo)
        out["primary_before"] = primary(topo, 1)
        subprocess.run(
            [sys.executable, "-m", "relayops", "redis-passwords", "--repo", str(root),
             "--rotate", "relayops-sentinel"],
            check=True, capture_output=True, cwd=ENGINE_ROOT,
        )  # fmt: skip
        started = time.monotonic()
        names = operation_names(root)
        out["rotation_redeploy"] = {
            "seconds": round(time.monotonic() - started, 2),
            "operations": len(names),
            "sentinel_operations": [n for n in names if "sentinel" in n.lower()],
        }
        out["sentinels_ready_after_s"] = wait_ready(topo)
        time.sleep(3)  # past down-after-milliseconds (2 s): a failing auth would show now
        out["after"] = healthy(topo)
        out["primary_after"] = primary(topo, 1)
        out["no_change_redeploy"] = operation_names(root)
    finally:
        lifecycle.down(index=INDEX)
    write_report(out, args.out)


if __name__ == "__main__":
    main()
