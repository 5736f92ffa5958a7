"""The address plan the inventory relies on."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from relayops.lab.topology import DNSBL_ZONE, MAX_RELAYS, Topology
from relayops.loader import load_repo


def test_default_plan_matches_the_inventory_contract() -> None:
    topo = Topology(index=0, relay_count=2)
    assert topo.gateway == "198.18.0.1"
    assert (topo.dns.fqdn, topo.dns.address) == ("ns.lab", "198.18.0.2")
    assert (topo.sink.fqdn, topo.sink.address) == ("isp.lab", "198.18.0.3")
    relay2 = topo.relay(2)
    assert relay2.fqdn == "relay2.relay.example.net"
    assert relay2.address == "198.18.0.12"
    assert relay2.extra_addresses == ("198.18.0.121", "198.18.0.122", "198.18.0.123")
    assert [h.name for h in topo.hosts] == ["ns", "isp", "relay1", "relay2"]


def test_every_address_is_unique_and_in_the_benchmark_range() -> None:
    topo = Topology(index=0, relay_count=MAX_RELAYS)
    addresses = [topo.gateway] + [a for h in topo.hosts for a in h.addresses]
    assert len(addresses) == len(set(addresses))
    bench = ipaddress.IPv4Network("198.18.0.0/15")
    assert all(ipaddress.IPv4Address(a) in topo.network.hosts() for a in addresses)
    assert all(ipaddress.IPv4Address(a) in bench for a in addresses)


def test_fleet_relays_take_their_extras_from_the_free_block() -> None:
    topo = Topology(index=0, relay_count=MAX_RELAYS)
    assert topo.relay(15).extra_addresses == ("198.18.0.251", "198.18.0.252", "198.18.0.253")
    assert topo.relay(16).extra_addresses == ("198.18.0.35", "198.18.0.36", "198.18.0.37")
    assert topo.relay(20).address == "198.18.0.30"
    assert topo.relay(MAX_RELAYS).extra_addresses[-1] == "198.18.0.61"


def test_interface_names_fit_the_kernel_limit() -> None:
    topo = Topology(index=1, relay_count=MAX_RELAYS)
    assert all(len(topo.veth(h)) <= 15 for h in topo.hosts)
    assert len(topo.bridge) <= 15


def test_second_instance_is_disjoint() -> None:
    a, b = Topology(index=0, relay_count=2), Topology(index=1, relay_count=2)
    assert a.network != b.network
    assert a.bridge != b.bridge and a.netns_prefix != b.netns_prefix
    assert not str(b.state_dir).startswith(str(a.state_dir) + "/")


@pytest.mark.parametrize("relays", [0, MAX_RELAYS + 1])
def test_relay_count_is_bounded(relays: int) -> None:
    with pytest.raises(ValueError, match="relays must be between"):
        Topology(index=0, relay_count=relays)


def test_host_lookup_by_name_or_fqdn() -> None:
    topo = Topology(index=0, relay_count=2)
    assert topo.host("relay1") == topo.host("relay1.relay.example.net")
    with pytest.raises(KeyError, match="no lab host named"):
        topo.host("relay9")


def test_inventory_lab_py_addresses_the_lab_hosts() -> None:
    """inventory/lab.py copies the plan by hand: this keeps the two in step."""
    repo = load_repo(Path(__file__).resolve().parents[2]).repo
    assert repo is not None
    inventory = repo.inventories["lab"]
    topo = Topology(index=0, relay_count=len(inventory.hosts))
    for k, host in enumerate(inventory.hosts, start=1):
        lab_host = topo.relay(k)
        assert (host.fqdn, host.ssh_hostname) == (lab_host.fqdn, lab_host.address)
        assert {str(ip.address) for ip in host.ips} <= set(lab_host.addresses)
    assert [z.zone for z in inventory.dnsbl_zones] == [DNSBL_ZONE]
    text = (Path(__file__).resolve().parents[2] / "inventory" / "lab.py").read_text()
    assert f'"ssh_known_hosts_file": "{topo.known_hosts}"' in text
    assert inventory.shared_counters == (
        f"rediss://relayops-policyd@{topo.relay(1).address}:6380/0?ca=/etc/relayops/tls/ca.pem"
    )
