"""The throwaway fleet lab (index 1, 198.18.1.0/24): a copy of the example repository with
an inventory naming its first N relays, counters behind Sentinel on relays 1-3.

Shared by fleet.py (deploy times, shared quota) and failover.py (the primary killed under
load). The shared lab (index 0) and the example's inventory/lab.py are never touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from relayops.deploy.runner import ENGINE_ROOT
from relayops.deploy.target import load_target
from relayops.lab.dns import LabDNS, reverse_zone
from relayops.lab.host import host_command
from relayops.lab.publish import publishable
from relayops.lab.topology import Host, Topology

INDEX = 1
SENTINELS = 3
REPO_PARTS = ("customers", "policies", "inventory", "schemas", "secrets", "lab")
WORK = Path(__file__).resolve().parents[1] / "work" / "fleet-bench"
CA = "/etc/relayops/tls/ca.pem"  # where the deploy puts the lab CA on each relay


def counters_url(topo: Topology) -> str:
    """rediss+sentinel:// naming the sentinels of relays 1-3 (the deploy runs them)."""
    hosts = ",".join(f"{r.address}:26379" for r in topo.relays[:SENTINELS])
    return f"rediss+sentinel://relayops-policyd@{hosts}/relayops/0?ca={CA}"


def host_entry(topo: Topology, relay: Host, ips: Sequence[str]) -> str:
    """One relay of an inventory: reached as root with the lab's key, carrying `ips`."""
    return (
        f'("{relay.fqdn}", {{"ssh_hostname": "{relay.address}", "ssh_user": "root", '
        f'"ssh_key": "{topo.ssh_key}", "relayops_ips": [{", ".join(ips)}]}})'
    )


def group_data(topo: Topology) -> dict[str, str]:
    """The group data of a bench inventory: the counters as production has them
    (inventory/production.py): TLS verified with the service's CA, the daemon's ACL user
    and password (secrets/redis/), the primary found through the sentinels the deploy runs
    on relays 1-3. Host keys pinned, as the example's lab inventory does."""
    return {
        "relayops_shared_counters": counters_url(topo),
        "ssh_known_hosts_file": str(topo.known_hosts),
        "ssh_strict_host_key_checking": "yes",
        "relayops_age_identity": "lab/age-identity.lab-only.txt",
        "relayops_tls": "lab-ca",
        "relayops_check_nameserver": topo.dns.address,
    }


def inventory_text(topo: Topology, size: int) -> str:
    """An inventory naming the first `size` relays of `topo`; the counters' group is relays
    1-3 whatever `size` (with 2, relay 3's part is deployed by a larger copy).

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
        hosts.append(host_entry(topo, relay, ips))
    body = ",\n        ".join(hosts)
    group_text = ",\n        ".join(f'"{k}": "{v}"' for k, v in group_data(topo).items())
    return (
        f'"""Fleet lab (index {topo.index}): {size} relays, counters behind Sentinel on '
        f'relays 1-{SENTINELS}."""\n\n'
        f"relays = (\n    [\n        {body},\n    ],\n    {{\n        {group_text},\n    }},\n)\n"
    )


def fresh_repo(root: Path = WORK / "repo") -> Path:
    """A copy of the example repository's policy parts (the engine is this checkout)."""
    shutil.rmtree(root, ignore_errors=True)
    for part in REPO_PARTS:
        shutil.copytree(ENGINE_ROOT / part, root / part)
    return root


def write_inventory(root: Path, topo: Topology, size: int) -> Path:
    """inventory/lab.py of the copy for `size` relays, its DNS published in the fleet lab."""
    inventory = root / "inventory" / "lab.py"
    inventory.write_text(inventory_text(topo, size))
    publish(root, topo)
    return inventory


def publish(root: Path, topo: Topology) -> None:
    target = load_target(root, "lab")
    LabDNS(topo).publish(publishable(target.repo, target.inventory, root, reverse_zone(topo)))


def on_relay(topo: Topology, k: int, script: str, *, check: bool = True) -> str:
    """Run a shell script on relay k (1-based) of the fleet lab; its stdout."""
    argv = host_command(topo, topo.relays[k - 1], ["/bin/sh", "-c", script])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"relay{k}: {script!r} failed: {done.stderr.strip()}")
    return done.stdout


def redis_cli(topo: Topology, k: int, address: str, port: int, args: Sequence[str]) -> str:
    """redis-cli as the daemon's ACL user over TLS, from relay k, against address:port."""
    quoted = " ".join(f"'{a}'" for a in args)
    script = (
        f'REDISCLI_AUTH="$(cat /etc/relayops/redis-password)" redis-cli --no-auth-warning '
        f"--tls --cacert {CA} -h {address} -p {port} --user relayops-policyd {quoted}"
    )
    return on_relay(topo, k, script).strip()


def sentinel_cli(topo: Topology, k: int, args: Sequence[str]) -> str:
    """A question to relay k's sentinel (as the daemon's user: it may ask where the primary is)."""
    return redis_cli(topo, k, topo.relays[k - 1].address, 26379, args)


def write_report(out: object, path: Path | None) -> None:
    """The figures as JSON on stdout, and into `path` (--out) when given."""
    text = json.dumps(out, indent=2)
    if path:
        path.write_text(text + "\n")
    print(text)
