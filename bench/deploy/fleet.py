"""The fleet at 2, 5, 10 and 20 relays: deploy times and one quota shared by every daemon.

    .venv/bin/python bench/deploy/fleet.py [--sizes 2,5,10,20] [--out FILE.json]

One throwaway lab (index 1, 198.18.1.0/24) with the largest size is brought up once;
for each size N an inventory naming relays 1..N (pool IPs alternating shared-eu /
shared-us, the example's dedicated IPs on relays 1 and 2, counters in the Redis on
relay 1) is written into a copy of the example repository. Per size:

1. deploy: canary (relay 1 alone) then the other N-1 relays in parallel (pyinfra);
2. no-change redeploy, three times;
3. a one-customer change (acme's quota_override), deployed to all N relays.

Then, at the largest size, one customer's daily quota is spent through all N policy
daemons at once (each daemon asked over SSH-less `ip netns exec` from its own relay's
namespace) and the accepted count must equal the quota exactly.
Prints one JSON object; the shared lab (index 0) is not touched.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from relayops.deploy.runner import ENGINE_ROOT, run_deploy
from relayops.deploy.target import load_target
from relayops.lab import lifecycle
from relayops.lab.dns import LabDNS, reverse_zone
from relayops.lab.host import host_command
from relayops.lab.publish import publishable
from relayops.lab.runner import Runner
from relayops.lab.topology import Topology

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_quota import spend  # the client script beside this one

INDEX = 1
REPO_PARTS = ("customers", "policies", "inventory", "schemas", "secrets", "lab")
QUOTA = 700  # umbrella's daily quota during the shared-quota run
EACH = 60  # RCPT questions per daemon: 20 daemons ask 1,200 for a quota of 700
WORK = Path(__file__).resolve().parents[1] / "work" / "fleet-bench"


def inventory_text(topo: Topology, size: int) -> str:
    """An inventory naming the first `size` relays of `topo`.

    Every relay's main address is in shared-eu, so that pool (acme, stark, umbrella)
    leaves from all `size` relays and its quotas are counted by all their daemons; even
    relays also carry a shared-us address; relays 1 and 2 the example's dedicated IPs.
    """
    hosts = []
    for k, relay in enumerate(topo.relays[:size], start=1):
        ips = [
            f'{{"name": "eu-{k}", "address": "{relay.address}", "pool": "shared-eu", '
            f'"ptr": "{relay.fqdn}"}}'
        ]
        dedicated = {1: ("dedicated-1", "dedicated-2"), 2: ("dedicated-3",)}.get(k, ())
        for j, name in enumerate(dedicated):
            ips.append(
                f'{{"name": "{name}", "address": "{relay.extra_addresses[j]}", '
                f'"dedicated": True, "ptr": "o{k}{j}.relay.example.net"}}'
            )
        if k % 2 == 0:
            ips.append(
                f'{{"name": "us-{k}", "address": "{relay.extra_addresses[-1]}", '
                f'"pool": "shared-us", "ptr": "u{k}.relay.example.net"}}'
            )
        hosts.append(
            f'("{relay.fqdn}", {{"ssh_hostname": "{relay.address}", "ssh_user": "root", '
            f'"ssh_key": "{topo.ssh_key}", "relayops_ips": [{", ".join(ips)}]}})'
        )
    counters = f"redis://{topo.relays[0].address}:6379/0"
    body = ",\n        ".join(hosts)
    return (
        f'"""Fleet benchmark lab (index 1): {size} relays."""\n\n'
        f"relays = (\n    [\n        {body},\n    ],\n"
        f'    {{"relayops_shared_counters": "{counters}"}},\n)\n'
    )


def deploy(inventory: Path, *, limit: tuple[str, ...] = ()) -> dict[str, Any]:
    result = run_deploy(inventory, capture=True, limit=limit)
    if result.returncode != 0:
        raise SystemExit(f"deploy failed:\n{result.output[-6000:]}")
    operations = sum("--> Starting operation:" in line for line in result.output.splitlines())
    return {"seconds": round(result.seconds, 2), "operations": operations}


def canary_deploy(inventory: Path, topo: Topology, size: int) -> dict[str, Any]:
    names = [r.fqdn for r in topo.relays[:size]]
    canary = deploy(inventory, limit=(names[0],))
    rest = deploy(inventory, limit=tuple(names[1:])) if size > 1 else {"seconds": 0.0}
    return {"canary": canary, "rest": rest}


def shared_quota(topo: Topology, size: int, root: Path, inventory: Path) -> dict[str, Any]:
    """umbrella's quota spent through all `size` daemons at once, counted in relay 1's Redis."""
    path = root / "customers" / "umbrella.yaml"
    path.write_text(path.read_text().replace("quota_override: 15000", f"quota_override: {QUOTA}"))
    deploy(inventory)
    clear = "redis-cli --scan --pattern 'relayops:*:umbrella:*' | xargs -r redis-cli del"
    Runner().run(host_command(topo, topo.relays[0], ["/bin/sh", "-c", clear]))
    namespaces = [topo.netns(r) for r in topo.relays[:size]]
    started = time.monotonic()
    answers = spend(namespaces, "umbrella", EACH)
    return {
        "daemons": size,
        "quota": QUOTA,
        "asked": EACH * size,
        "answers": dict(answers),
        "exact": answers == {"dunno": QUOTA, "quota_452": EACH * size - QUOTA},
        "seconds": round(time.monotonic() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2,5,10,20")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true", help="leave the fleet lab up")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict[str, Any] = {"sizes": {}}
    lifecycle.down(index=INDEX)
    started = time.monotonic()
    topo = lifecycle.up(relays=max(sizes), index=INDEX).topology
    out["lab_up_seconds"] = round(time.monotonic() - started, 2)
    root = WORK / "repo"
    shutil.rmtree(root, ignore_errors=True)
    for part in REPO_PARTS:
        shutil.copytree(ENGINE_ROOT / part, root / part)
    inventory = root / "inventory" / "lab.py"
    acme = root / "customers" / "acme.yaml"
    original = acme.read_text()
    try:
        for size in sizes:
            inventory.write_text(inventory_text(topo, size))
            acme.write_text(original)
            target = load_target(root, "lab")
            LabDNS(topo).publish(
                publishable(target.repo, target.inventory, root, reverse_zone(topo))
            )
            row: dict[str, Any] = {"first_deploy": canary_deploy(inventory, topo, size)}
            row["no_change"] = [deploy(inventory) for _ in range(3)]
            changed = original.replace("plan: business\n", "plan: business\nquota_override: 9000\n")
            acme.write_text(changed)
            row["one_customer_change"] = deploy(inventory)
            out["sizes"][str(size)] = row
            print(json.dumps({str(size): row}), flush=True)
        out["shared_quota"] = shared_quota(topo, max(sizes), root, inventory)
    finally:
        if not args.keep:
            lifecycle.down(index=INDEX)
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
