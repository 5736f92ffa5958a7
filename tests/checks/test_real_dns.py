"""DNS and DNSBL checks through `relayops check` against a real NSD on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from relayops.cli import cli
from support.nsd import nsd_server
from support.processes import free_udp_tcp_port

pytestmark = pytest.mark.real

SOA = (
    "@ 3600 IN SOA ns.relay.test. hostmaster.relay.test. 1 3600 600 86400 300\n"
    "@ IN NS ns.relay.test.\n"
)


def _public_key() -> tuple[str, str]:
    """(PEM, base64 DER) of a fresh RSA-2048 public key."""
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der).decode()


def _txt(value: str) -> str:
    """Zone-file TXT rdata: split into <=255-byte character-strings (RFC 1035 3.3.14)."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def zones(good_b64: str, other_b64: str) -> dict[str, str]:
    hosts = " ".join(f"a:h{i}.broken.test" for i in range(10))
    return {
        "relay.test": SOA
        + "ns A 127.0.0.1\n"
        + "@ MX 10 mx.relay.test.\n"
        + "mx A 127.0.0.2\n"
        + "out1 A 127.0.0.2\n"
        + "out2 A 127.0.0.3\n"
        + "out4 A 127.0.0.99\n"
        + f"spf TXT {_txt('v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 -all')}\n",
        "acme.test": SOA
        + f"@ TXT {_txt('v=spf1 include:spf.relay.test -all')}\n"
        + f"s1._domainkey TXT {_txt('v=DKIM1; k=rsa; p=' + good_b64)}\n"
        + f"_dmarc TXT {_txt('v=DMARC1; p=reject; rua=mailto:dmarc@acme.test')}\n",
        "broken.test": SOA
        + f"@ TXT {_txt('v=spf1 include:_spf.broken.test -all')}\n"
        + f"_spf TXT {_txt('v=spf1 ' + hosts + ' -all')}\n"
        + f"s1._domainkey TXT {_txt('v=DKIM1; k=rsa; p=' + other_b64)}\n"
        + f"_dmarc TXT {_txt('v=DMARC1; p=block')}\n",
        "nodmarc.test": SOA + f"@ TXT {_txt('v=spf1 ip4:127.0.0.2 -all')}\n",
        "0.0.127.in-addr.arpa": SOA
        + "2 PTR out1.relay.test.\n"
        + "3 PTR static-3.isp.test.\n"
        + "4 PTR out4.relay.test.\n",
        "bl.test": SOA
        + "2.0.0.127 A 127.0.0.2\n"
        + f"2.0.0.127 TXT {_txt('listed for test, see https://bl.test/127.0.0.2')}\n"
        + "3.0.0.127 A 127.255.255.254\n",
        "dbl.test": SOA + "broken.test A 127.0.1.2\n",
    }


@pytest.fixture(scope="module")
def keys() -> tuple[tuple[str, str], tuple[str, str]]:
    return _public_key(), _public_key()


@pytest.fixture(scope="module")
def nameserver(keys: tuple[tuple[str, str], tuple[str, str]]) -> Iterator[str]:
    (_, good_b64), (_, other_b64) = keys
    with nsd_server(zones(good_b64, other_b64)) as address:
        yield address


def targets(good_pem: str) -> dict[str, Any]:
    both = ["127.0.0.2", "127.0.0.3"]
    return {
        "service_domain": "relay.test",
        "expected_mx": ["mx.relay.test"],
        "hosts": [
            {
                "fqdn": "relay1.relay.test",
                "ips": [
                    {"address": "127.0.0.2", "helo": "out1.relay.test"},
                    {"address": "127.0.0.3", "helo": "out2.relay.test"},
                ],
            },
            {
                "fqdn": "relay2.relay.test",
                "ips": [
                    {"address": "127.0.0.4", "helo": "out4.relay.test"},
                    {"address": "127.0.0.5", "helo": "out5.relay.test"},
                ],
            },
        ],
        "sender_domains": [
            {
                "name": "acme.test",
                "customer": "acme",
                "relay_ips": both,
                "dkim": [{"selector": "s1", "public_key_pem": good_pem}],
            },
            {
                "name": "broken.test",
                "customer": "broken",
                "relay_ips": both,
                "dkim": [{"selector": "s1", "public_key_pem": good_pem}],
            },
            {"name": "nodmarc.test", "customer": "broken", "relay_ips": both},
        ],
        "dnsbl_zones": [{"zone": "bl.test", "kind": "ip"}, {"zone": "dbl.test", "kind": "domain"}],
    }


def run_check(tmp_path: Path, data: dict[str, Any], *args: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "targets.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(cli, ["check", "--targets", str(path), "--json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)


def by_subject(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        r["subject"]: (r["status"], r["message"]) for g in report["groups"] for r in g["results"]
    }


def test_dns_and_dnsbl_through_the_cli(
    tmp_path: Path, nameserver: str, keys: tuple[tuple[str, str], tuple[str, str]]
) -> None:
    (good_pem, _), _ = keys
    code, report = run_check(
        tmp_path, targets(good_pem), "--nameserver", nameserver, "--only", "dns,dnsbl"
    )
    seen = by_subject(report)
    assert code == 1
    # concurrency changes nothing: the same report, in the same order, one probe at a time
    serial = run_check(
        tmp_path,
        targets(good_pem),
        "--nameserver",
        nameserver,
        "--only",
        "dns,dnsbl",
        "--workers",
        "1",
    )
    assert serial == (code, report)
    # the healthy customer passes everything
    acme = next(g for g in report["groups"] if g["group"] == "customer acme")
    assert acme["status"] == "ok", acme
    assert seen["acme.test SPF authorises 127.0.0.3"][0] == "ok"
    assert seen["acme.test DKIM s1"] == (
        "ok",
        "DKIM key at s1._domainkey.acme.test matches the signing key.",
    )
    # the broken customer: 11 lookups, wrong DKIM key, invalid and missing DMARC
    assert seen["broken.test SPF"] == (
        "error",
        "SPF record of broken.test needs 11 DNS lookups, more than the 10 RFC 7208 4.6.4 "
        "allows, so receivers get a permerror; replace includes by ip4:/ip6: mechanisms.",
    )
    assert seen["broken.test SPF authorises 127.0.0.2"][0] == "error"
    assert "is not the signing key" in seen["broken.test DKIM s1"][1]
    assert seen["broken.test DMARC"] == (
        "error",
        "DMARC record at _dmarc.broken.test is invalid (Tag p must have one of the "
        "following values: none,quarantine,reject - not block); fix it.",
    )
    assert seen["nodmarc.test DMARC"][1].startswith("no DMARC record at _dmarc.nodmarc.test")
    assert seen["nodmarc.test SPF authorises 127.0.0.3"][1].startswith(
        "SPF of nodmarc.test gives fail for relay IP 127.0.0.3"
    )
    # PTR / FCrDNS
    assert seen["127.0.0.2 PTR"][0] == "ok"
    assert seen["127.0.0.3 PTR"][1].startswith("PTR of 127.0.0.3 is static-3.isp.test but")
    assert "resolves to 127.0.0.99, not back to 127.0.0.4" in seen["127.0.0.4 PTR"][1]
    assert seen["127.0.0.5 PTR"][1].startswith("127.0.0.5 has no PTR record")
    assert seen["relay.test MX"] == ("ok", "MX of relay.test: mx.relay.test.")
    # DNSBL: listed (with the zone's reason), refused, clean
    assert seen["127.0.0.2 in bl.test"][0] == "error"
    assert "(listed for test, see https://bl.test/127.0.0.2)" in seen["127.0.0.2 in bl.test"][1]
    assert seen["127.0.0.3 in bl.test"][0] == "warning"
    assert "127.255.255.254" in seen["127.0.0.3 in bl.test"][1]
    assert seen["127.0.0.4 in bl.test"][0] == "ok"
    assert seen["broken.test in dbl.test"][0] == "error"
    assert seen["acme.test in dbl.test"][0] == "ok"
    # failing groups come first
    assert report["groups"][0]["status"] == "error"
    assert report["groups"][-1]["status"] == "ok"


def test_customer_filter_and_exit_zero(
    tmp_path: Path, nameserver: str, keys: tuple[tuple[str, str], tuple[str, str]]
) -> None:
    (good_pem, _), _ = keys
    data = targets(good_pem)
    data["hosts"] = data["hosts"][:1]
    data["hosts"][0]["ips"] = data["hosts"][0]["ips"][:1]
    data["dnsbl_zones"] = [{"zone": "dbl.test", "kind": "domain"}]
    code, report = run_check(
        tmp_path, data, "--nameserver", nameserver, "--only", "dns,dnsbl", "--customer", "acme"
    )
    assert code == 0, report
    assert {g["group"] for g in report["groups"]} == {
        "customer acme",
        "host relay1.relay.test",
        "service relay.test",
    }


def test_unreachable_nameserver_is_an_error_not_a_pass(tmp_path: Path) -> None:
    data = {"service_domain": "relay.test"}
    port = free_udp_tcp_port("127.0.0.1")  # nothing listens there
    code, report = run_check(
        tmp_path, data, "--nameserver", f"127.0.0.1:{port}", "--only", "dns", "--timeout", "1"
    )
    assert code == 1
    assert by_subject(report)["relay.test MX"] == (
        "error",
        "DNS did not answer (relay.test MX: no answer within 2s); check the zone's "
        "nameservers (or --nameserver).",
    )


def test_repository_inventory_through_the_loader(tmp_path: Path, example_repo: Path) -> None:
    """`--inventory inventory/lab.py` builds the targets from the example repository; the
    lab's blocklist zone is served by a local NSD listing one relay IP."""
    zone = SOA + "11.0.18.198 A 127.0.0.2\n" + "12.0.18.198 A 127.255.255.254\n"
    with nsd_server({"dnsbl.lab": zone}) as address:
        result = CliRunner().invoke(
            cli,
            [
                "check",
                "--repo",
                str(example_repo),
                "--inventory",
                "lab",
                "--only",
                "dnsbl",
                "--nameserver",
                address,
                "--json",
            ],
        )
    assert result.exit_code == 1, result.output
    seen = by_subject(json.loads(result.output))
    assert seen["198.18.0.11 in dnsbl.lab"][0] == "error"
    assert seen["198.18.0.12 in dnsbl.lab"][0] == "warning"
    assert seen["198.18.0.121 in dnsbl.lab"] == ("ok", "198.18.0.121 is not listed in dnsbl.lab.")


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"service_domain": "relay.test"}))
    runner = CliRunner()
    bad_only = runner.invoke(cli, ["check", "--targets", str(path), "--only", "dns,smtp"])
    assert bad_only.exit_code == 2
    assert "unknown smtp; choose from dns,tls,ports,relay,dnsbl" in bad_only.output
    path.write_text(json.dumps({"service_domain": "relay.test", "hosts": [{"fqdn": 1}]}))
    invalid = runner.invoke(cli, ["check", "--targets", str(path)])
    assert invalid.exit_code == 2
    assert "invalid targets: hosts.0.fqdn" in invalid.output
    path.write_text(json.dumps({"service_domain": "relay.test"}))
    nothing = runner.invoke(cli, ["check", "--targets", str(path), "--only", "tls,relay"])
    assert nothing.exit_code == 2
    assert "nothing to check: the targets have no host or domain for --only tls,relay" in (
        nothing.output
    )
    unknown = runner.invoke(cli, ["check", "--targets", str(path.with_name("nope.json"))])
    assert unknown.exit_code == 2
    assert unknown.output == (
        f"relayops check: Invalid value for '--targets': File '{path.with_name('nope.json')}' "
        "does not exist.\nTry 'relayops check --help'.\n"
    )
