"""Deploy and throughput figures on a throwaway 3-relay lab (index 1, 198.18.1.0/24).

    .venv/bin/python bench/deploy/run.py [--messages 1500] [--connections 6]

1. lab up --index 1 --relays 3 (cached image), a copy of the example repository whose lab
   inventory names those 3 relays; its DNS published.
2. first deploy, then a no-change redeploy (3 relays).
3. messages per second accepted by relay1 on 587 (STARTTLS + AUTH once per connection,
   several messages per connection, one recipient each), with the policy check, then with
   the check taken out of the running Postfix (postconf -e + reload; redeployed after).
4. lab down --index 1. Prints one JSON object; the shared lab (index 0) is not touched.
"""

from __future__ import annotations

import argparse
import json
import shutil
import smtplib
import sys
import threading
import time
from pathlib import Path
from typing import Any

from relayops.checkout import CHECKOUT
from relayops.deploy.runner import run_deploy
from relayops.deploy.target import load_target
from relayops.deploy.wheels import ensure_wheels
from relayops.lab import lifecycle
from relayops.lab.dns import LabDNS, reverse_zone
from relayops.lab.host import host_command
from relayops.lab.mail import message, tls_context
from relayops.lab.publish import publishable
from relayops.lab.runner import Runner
from relayops.lab.topology import Topology
from relayops.labca import LabCA

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_lab import group_data, host_entry

INDEX = 1
RELAYS = 3
WORK = Path(__file__).resolve().parents[1] / "work" / "deploy-bench"
PASSWORD = "lab-acme-app-pw"
# What a private copy of the example repository needs (the deploy reads no more).
REPO_PARTS = ("customers", "policies", "inventory", "schemas", "secrets", "lab")
HOST_PYTHON = "3.11.2"  # Debian 12's python3, what the lab image runs


def inventory_text(topo: Topology) -> str:
    """The example's lab inventory, reshaped for `topo`'s relays (IP names kept)."""
    names = {
        1: [("eu-1", "pool", "shared-eu"), ("dedicated-1", "dedicated", None),
            ("dedicated-2", "dedicated", None)],
        2: [("us-1", "pool", "shared-us"), ("eu-2", "pool", "shared-eu"),
            ("dedicated-3", "dedicated", None)],
        3: [("eu-3", "pool", "shared-eu"), ("us-3", "pool", "shared-us")],
    }  # fmt: skip
    hosts = []
    for k, relay in enumerate(topo.relays, start=1):
        ips = []
        for j, (name, kind, pool) in enumerate(names[k]):
            address = relay.addresses[j]
            ptr = relay.fqdn if j == 0 else f"o{k}{j}.relay.example.net"
            role = f'"pool": "{pool}"' if kind == "pool" else '"dedicated": True'
            ips.append(f'{{"name": "{name}", "address": "{address}", {role}, "ptr": "{ptr}"}}')
        hosts.append(host_entry(topo, relay, ips))
    # The counters as production has them, behind Sentinel on the three relays.
    group_text = ", ".join(f'"{k}": "{v}"' for k, v in group_data(topo).items())
    return (
        '"""Benchmark lab (index 1): three relays, counters behind Sentinel on them."""\n\n'
        f"relays = (\n    [\n        {(',' + chr(10) + '        ').join(hosts)},\n    ],\n"
        f"    {{{group_text}}},\n)\n"
    )


def timed_deploy(inventory: Path) -> dict[str, Any]:
    result = run_deploy(inventory, capture=True)
    if result.returncode != 0:
        raise SystemExit(f"deploy failed:\n{result.output[-6000:]}")
    names = [
        line.split("--> Starting operation:", 1)[1].strip()
        for line in result.output.splitlines()
        if "--> Starting operation:" in line
    ]
    return {"seconds": result.seconds, "operations": len(names), "names": names[:12]}


def throughput(address: str, ca: Path, *, messages: int, connections: int) -> dict[str, Any]:
    per_connection = messages // connections
    errors: list[str] = []
    barrier = threading.Barrier(connections + 1)

    def worker(n: int) -> None:
        try:
            with smtplib.SMTP(address, 587, timeout=60) as smtp:
                smtp.starttls(context=tls_context(ca))
                smtp.login("acme-app", PASSWORD)
                msg = message("bench@acme.example", ("bench@isp.lab",), f"bench {n}", "x\n")
                barrier.wait()
                for _ in range(per_connection):
                    smtp.send_message(msg, "bench@acme.example", ["bench@isp.lab"])
        except (smtplib.SMTPException, OSError, threading.BrokenBarrierError) as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    sent = per_connection * connections
    return {
        "messages": sent,
        "connections": connections,
        "seconds": round(seconds, 2),
        "per_second": round(sent / seconds, 1),
        "errors": errors[:3],
    }


def relay_shell(topo: Topology, script: str) -> None:
    Runner().run(host_command(topo, topo.relays[0], ["/bin/sh", "-c", script]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--connections", type=int, default=6)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    lifecycle.down(index=INDEX)
    started = time.monotonic()
    up = lifecycle.up(relays=RELAYS, index=INDEX)
    out["lab_up_cached_image"] = round(time.monotonic() - started, 2)
    topo = up.topology
    root = WORK / "repo"
    if root.exists():
        shutil.rmtree(root)
    for part in REPO_PARTS:
        shutil.copytree(CHECKOUT / part, root / part)
    text = (root / "customers/acme.yaml").read_text()
    (root / "customers/acme.yaml").write_text(
        text.replace("plan: business\n", "plan: business\nquota_override: 20000\n")
    )
    (root / "inventory/lab.py").write_text(inventory_text(topo))
    target = load_target(root, "lab")
    LabDNS(topo).publish(publishable(target.repo, target.inventory, root, reverse_zone(topo)))
    inventory = root / "inventory/lab.py"
    try:
        # The wheel build (pip, cached by source digest) is timed apart from the deploy.
        wheels_started = time.monotonic()
        ensure_wheels(HOST_PYTHON)
        out["wheel_build_or_cache_hit"] = round(time.monotonic() - wheels_started, 2)
        out["first_deploy"] = timed_deploy(inventory)
        out["no_change_redeploy"] = [timed_deploy(inventory) for _ in range(3)]
        ca = LabCA().cert_path
        address = topo.relays[0].address
        throughput(address, ca, messages=60, connections=3)  # warm-up: processes, caches
        out["with_policy_check"] = throughput(
            address, ca, messages=args.messages, connections=args.connections
        )
        relay_shell(
            topo,
            "postconf -e 'relayops_recipient_restrictions = reject_non_fqdn_recipient, permit' "
            "'relayops_end_of_data_restrictions = permit' && postfix reload",
        )
        time.sleep(2)
        throughput(address, ca, messages=60, connections=3)
        out["without_policy_check"] = throughput(
            address, ca, messages=args.messages, connections=args.connections
        )
        with_rate = out["with_policy_check"]["per_second"]
        without_rate = out["without_policy_check"]["per_second"]
        out["policy_check_cost_percent"] = round(100 * (1 - with_rate / without_rate), 1)
        out["restore_deploy"] = timed_deploy(inventory)
    finally:
        lifecycle.down(index=INDEX)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
