"""The running lab, seen from outside: SSH, hostnames, routes, DNS, mail to the sink."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import dns.resolver
import dns.reversename
import pytest
from click.testing import CliRunner

from relayops.lab.cli import lab as lab_cli
from relayops.lab.dns import Record
from support.lab import Lab

pytestmark = pytest.mark.lab


def resolver(lab: Lab) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [lab.topology.dns.address]
    res.lifetime = 5
    return res


def test_every_host_answers_ssh_with_the_lab_key_and_knows_its_name(lab: Lab) -> None:
    for host in lab.topology.hosts:
        status, out, err = lab.run(host.name, "hostname; hostname -f; python3 -c 'print(1)'")
        assert status == 0, err
        assert out.split() == [host.fqdn, host.fqdn, "1"]


def test_no_host_has_a_default_route(lab: Lab) -> None:
    for host in lab.topology.hosts:
        routes = subprocess.run(
            ["ip", "-n", lab.topology.netns(host), "route", "show", "table", "all"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "default" not in routes, f"{host.name}: {routes}"
        status, out, _ = lab.run(host.name, "ip -4 route show default")
        assert status == 0 and out.strip() == ""


def test_each_host_sees_only_its_own_processes(lab: Lab) -> None:
    """A PID namespace per host: pid files, pidof and `ps` behave as on a machine of its own."""
    _, relay_ps, _ = lab.run("relay1", "ps -e -o pid=,comm=")
    _, dns_ps, _ = lab.run("ns", "ps -e -o comm=")
    assert relay_ps.split()[:2] == ["1", "relayops-init"]
    relay_names = [line.split(None, 1)[1] for line in relay_ps.splitlines() if line.strip()]
    dns_names = [line.strip() for line in dns_ps.splitlines() if line.strip()]
    # Whatever a deploy started on the relay, the DNS host's NSD is not among it,
    # and the relay's processes (sshd aside) are not seen from the DNS host.
    assert not any(name.startswith("nsd") for name in relay_names)
    assert "nsd: main" in dns_names
    others = [n for n in dns_names if n not in {"relayops-init", "sshd", "ps"}]
    assert all(n.startswith("nsd") for n in others), dns_names


def test_relay_carries_its_extra_addresses(lab: Lab) -> None:
    relay = lab.host("relay1")
    status, out, _ = lab.run("relay1", "ip -4 -o addr show dev eth0")
    assert status == 0
    for address in relay.addresses:
        assert f" {address}/24 " in out


def test_dns_answers_a_ptr_txt_mx_from_the_root_namespace(lab: Lab) -> None:
    res = resolver(lab)
    relay1 = lab.host("relay1")
    assert [r.to_text() for r in res.resolve(relay1.fqdn, "A")] == [relay1.address]
    # The primary address's PTR is the relay's name (a deploy may publish other names
    # for the extra addresses, as the inventory says).
    ptr = res.resolve(relay1.address.split(".")[3] + ".0.18.198.in-addr.arpa", "PTR")
    assert [r.to_text() for r in ptr] == [relay1.fqdn + "."]
    assert [r.to_text() for r in res.resolve("gmail.com", "MX")] == ["10 isp.lab."]
    assert [r.to_text() for r in res.resolve("2.0.0.127.dnsbl.lab", "A")] == ["127.0.0.2"]
    assert "DNSBL" in res.resolve("2.0.0.127.dnsbl.lab", "TXT")[0].to_text()


def test_publish_serves_new_records_and_long_txt(lab: Lab) -> None:
    key = "v=DKIM1; k=rsa; p=" + "B" * 400
    lab.dns.publish({
        "lab-test.example": [
            Record("@", "MX", 60, "10 isp.lab."),
            Record("sel._domainkey", "TXT", 60, key),
        ]
    })  # fmt: skip
    res = resolver(lab)
    txt = res.resolve("sel._domainkey.lab-test.example", "TXT")[0]
    assert b"".join(txt.strings).decode() == key  # type: ignore[attr-defined]
    assert [r.to_text() for r in res.resolve("lab-test.example", "MX")] == ["10 isp.lab."]
    lab.dns.unpublish(["lab-test.example"])
    with pytest.raises(dns.resolver.NoNameservers, match="REFUSED"):  # no longer authoritative
        res.resolve("lab-test.example", "MX")
    # the lab's own records survive any publish
    assert res.resolve("isp.lab", "A")[0].to_text() == lab.topology.sink.address


def test_dnsbl_listing_helper(lab: Lab) -> None:
    res = resolver(lab)
    ip = lab.host("relay1").extra_addresses[2]
    name = ".".join(reversed(ip.split("."))) + ".dnsbl.lab"
    lab.dns.list_ip(ip)
    try:
        assert [r.to_text() for r in res.resolve(name, "A")] == ["127.0.0.2"]
    finally:
        lab.dns.delist_ip(ip)
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve(name, "A")


def test_mail_from_a_relay_reaches_the_sink_by_mx(lab: Lab) -> None:
    """smtplib inside relay1: resolves gmail.com's MX through the lab DNS, delivers to isp.lab."""
    tag = uuid.uuid4().hex
    script = f"""
import smtplib, socket, subprocess
mx = "isp.lab"  # what the lab DNS says gmail.com's MX is; resolved by the relay's resolver
addr = socket.gethostbyname(mx)
with smtplib.SMTP(addr, 25, local_hostname=socket.getfqdn(), timeout=20) as s:
    s.starttls()
    s.sendmail("probe@relay.example.net", ["alice@gmail.com"],
               "From: probe@relay.example.net\\r\\nTo: alice@gmail.com\\r\\n"
               "Subject: lab {tag}\\r\\n\\r\\nhello\\r\\n")
print(addr)
"""
    status, out, err = lab.run("relay1", f"python3 - <<'EOF'\n{script}\nEOF")
    assert status == 0, err
    assert out.strip() == lab.topology.sink.address
    arrived = lab.sink.wait_for(lambda m: m.message["Subject"] == f"lab {tag}", timeout=20)
    assert arrived.domain == "gmail.com"
    received = str(arrived.message["Received"])
    assert lab.host("relay1").address in received
    assert "TLS" in received  # the sink offered STARTTLS and recorded it
    assert lab.sink.messages("gmail.com")
    assert all(m.domain == "gmail.com" for m in lab.sink.messages("gmail.com"))


def test_status_json_reports_healthy_hosts(lab: Lab) -> None:
    result = CliRunner().invoke(lab_cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["healthy"] is True
    by_name = {h["name"]: h for h in payload["hosts"]}
    assert by_name["ns"]["services"] == {"sshd": True, "nsd": True}
    assert by_name["isp"]["services"]["postfix"] is True
    assert by_name["relay1"]["address"] == "198.18.0.11"


def test_up_again_is_harmless_and_fast(lab: Lab) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(
        lab_cli, ["up", "--relays", str(lab.topology.relay_count), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reused"] is True
    assert time.monotonic() - started < 10
