"""The lab network: one bridge, a namespace and veth pair per host, addresses; no route out.

Nothing here adds a default route or NAT: a namespace reaches only the lab's
/24 on the bridge, and the root namespace (the controller) holds the gateway
address so pyinfra and the tests reach every host.
"""

from __future__ import annotations

from relayops.lab.runner import Runner
from relayops.lab.topology import Host, Topology


def parse_netns_list(text: str) -> list[str]:
    """Names from `ip netns list` (lines like `rlylab0-ns (id: 3)`)."""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def parse_link_names(text: str) -> list[str]:
    """Interface names from `ip -o link show` (`7: rl0-ns@if2: <...> ...`)."""
    names: list[str] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def lab_namespaces(runner: Runner, topo: Topology) -> list[str]:
    out = runner.run(["ip", "netns", "list"]).stdout
    return [n for n in parse_netns_list(out) if n.startswith(topo.netns_prefix)]


def lab_links(runner: Runner, topo: Topology) -> list[str]:
    """The bridge and any root-side veth ends this lab instance made."""
    out = runner.run(["ip", "-o", "link", "show"]).stdout
    veth_prefix = f"rl{topo.index}-"
    return [n for n in parse_link_names(out) if n == topo.bridge or n.startswith(veth_prefix)]


def netns_path(name: str) -> str:
    return f"/run/netns/{name}"


def create_bridge(runner: Runner, topo: Topology) -> None:
    br = topo.bridge
    runner.run(["ip", "link", "add", br, "type", "bridge"])
    runner.run(["ip", "addr", "add", f"{topo.gateway}/{topo.prefixlen}", "dev", br])
    runner.run(["ip", "link", "set", br, "up"])


def create_host_network(runner: Runner, topo: Topology, host: Host) -> None:
    """Namespace, veth pair (`eth0` inside), the host's addresses; no default route."""
    ns, veth = topo.netns(host), topo.veth(host)
    runner.run(["ip", "netns", "add", ns])
    runner.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    runner.run(["ip", "link", "set", veth, "master", topo.bridge, "up"])
    runner.run(["ip", "-n", ns, "link", "set", "lo", "up"])
    for address in host.addresses:
        runner.run(["ip", "-n", ns, "addr", "add", f"{address}/{topo.prefixlen}", "dev", "eth0"])
    runner.run(["ip", "-n", ns, "link", "set", "eth0", "up"])


def delete_network(runner: Runner, topo: Topology) -> None:
    """Delete every namespace, veth and the bridge of this lab instance (those that exist)."""
    for ns in lab_namespaces(runner, topo):
        runner.run(["ip", "netns", "del", ns])
    for link in sorted(lab_links(runner, topo), key=lambda n: n == topo.bridge):
        runner.run(["ip", "link", "del", link], check=False)
