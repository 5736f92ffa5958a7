"""Zone assembly and rendering for the lab DNS host (pure)."""

from __future__ import annotations

import dns.rdatatype
import dns.zone
import pytest

from relayops.lab.dns import (
    Record,
    ZoneError,
    absolute,
    assemble,
    base_records,
    base_zones,
    dnsbl_name,
    nsd_conf,
    render_zone,
    reverse_zone,
    txt_value,
)
from relayops.lab.topology import Topology

TOPO = Topology(index=0, relay_count=2)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("@", "example.com."),
        ("mail", "mail.example.com."),
        ("sel._domainkey", "sel._domainkey.example.com."),
        ("mail.example.com", "mail.example.com."),
        ("Other.Net.", "other.net."),
        ("example.com", "example.com."),
    ],
)
def test_absolute_names(name: str, expected: str) -> None:
    assert absolute(name, "example.com") == expected


def test_long_txt_is_split_into_255_byte_strings() -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 600
    rendered = txt_value(value)
    parts = rendered.split('" "')
    assert len(parts) == 3
    zone_text = render_zone(
        "example.com", [Record("sel._domainkey", "TXT", 60, value)], serial=1, primary="ns.lab"
    )
    zone = dns.zone.from_text(zone_text, origin="example.com.", relativize=False)
    rdata = zone.find_rdataset("sel._domainkey.example.com.", dns.rdatatype.TXT)[0]
    assert [len(s) for s in rdata.strings] == [255, 255, 108]
    assert b"".join(rdata.strings).decode() == value


def test_txt_quotes_are_escaped_and_prequoted_values_pass() -> None:
    assert txt_value('say "hi"') == '"say \\"hi\\""'
    assert txt_value('"a" "b"') == '"a" "b"'


def test_render_rejects_records_outside_the_zone_and_bad_values() -> None:
    with pytest.raises(ZoneError, match="outside zone"):
        render_zone(
            "example.com",
            [Record("x.example.org.", "A", 60, "198.18.0.9")],
            serial=1,
            primary="ns.lab",
        )
    with pytest.raises(ZoneError, match="does not parse"):
        render_zone("example.com", [Record("@", "A", 60, "not-an-ip")], serial=1, primary="ns.lab")


def test_base_records_cover_ptrs_mx_and_dnsbl_test_entry() -> None:
    records = {(r.name, r.type): r.value for r in base_records(TOPO, ["198.18.0.111"])}
    assert records[("112.0.18.198.in-addr.arpa.", "PTR")] == "relay1.relay.example.net."
    assert records[("12.0.18.198.in-addr.arpa.", "PTR")] == "relay2.relay.example.net."
    assert records[("gmail.com.", "MX")] == "10 isp.lab."
    assert records[("isp.lab.", "A")] == "198.18.0.3"
    assert records[(dnsbl_name("127.0.0.2"), "A")] == "127.0.0.2"
    assert records[("111.0.18.198.dnsbl.lab.", "A")] == "127.0.0.2"
    assert reverse_zone(TOPO) == "0.18.198.in-addr.arpa"


def test_assemble_puts_base_records_in_the_most_specific_zone_unless_overridden() -> None:
    published = {
        "relay.example.net": [Record("relay1", "TXT", 60, "v=spf1 -all")],
        "gmail.com": [Record("@", "MX", 60, "5 mx.example.")],
    }
    zones = assemble(base_records(TOPO), base_zones(TOPO), published)
    relay_zone = {(r.name, r.type) for r in zones["relay.example.net"]}
    assert ("relay1.relay.example.net.", "A") in relay_zone  # moved from example.net
    assert not any(r.name.startswith("relay1.") for r in zones["example.net"])
    assert [r.value for r in zones["gmail.com"] if r.type == "MX"] == ["5 mx.example."]
    assert "dnsbl.lab" in zones and "0.18.198.in-addr.arpa" in zones


def test_nsd_conf_lists_every_zone_and_the_control_socket() -> None:
    text = nsd_conf(TOPO, ["lab", "gmail.com"])
    assert "ip-address: 198.18.0.2" in text
    assert "control-interface: /run/nsd/nsd.ctl" in text
    assert text.count("zone:") == 2
