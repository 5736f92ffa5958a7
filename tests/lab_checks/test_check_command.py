"""`relayops check` as an operator runs it against the deployed lab: everything passes,
a failure exits 1 with the failing check in the JSON, and the inventory can name the lab's
CA and DNS server so that the options are not needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab_checks.changes import ip_listed
from lab_checks.checking import CREDENTIALS, INVENTORY, LabChecks

pytestmark = pytest.mark.lab

RELAYOPS = Path(sys.executable).with_name("relayops")


def relayops_check(*args: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [str(RELAYOPS), "check", *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, report, done.stderr


def lab_options(checks: LabChecks) -> list[str]:
    return [
        "--inventory", str(INVENTORY),
        "--nameserver", checks.nameserver,
        "--ca-bundle", str(checks.ca_bundle),
        "--credentials", str(CREDENTIALS),
    ]  # fmt: skip


def results(report: dict[str, Any]) -> list[dict[str, str]]:
    return [r for group in report["groups"] for r in group["results"]]


def test_everything_passes_after_a_deploy(checks: LabChecks) -> None:
    code, report, stderr = relayops_check(*lab_options(checks))
    problems = [f"{r['subject']}: {r['message']}" for r in results(report) if r["status"] != "ok"]
    assert (code, problems) == (0, []), stderr
    assert report["ok"] is True
    assert report["summary"]["error"] == report["summary"]["warning"] == 0
    checked = {r["check"] for r in results(report)}
    assert checked == {"dns", "tls", "ports", "relay", "dnsbl"}
    subjects = {r["subject"] for r in results(report)}
    for host in ("relay1.relay.example.net", "relay2.relay.example.net"):
        for port in (25, 465, 587, 993):
            assert f"{host}:{port} chain" in subjects
        for port in (25, 587, 465):
            assert f"{host}:{port} open relay" in subjects
        assert f"{host}:587 sender of acme-app" in subjects
    for domain in ("acme.example", "globex.example", "wayne.example"):
        assert f"{domain} SPF" in subjects and f"{domain} DMARC" in subjects
    for ip in ("198.18.0.11", "198.18.0.111", "198.18.0.112", "198.18.0.12", "198.18.0.121"):
        assert f"{ip} PTR" in subjects and f"{ip} in dnsbl.lab" in subjects
    assert "relay.example.net MX" in subjects


def test_a_failing_check_exits_1(checks: LabChecks) -> None:
    with ip_listed(checks.lab, "198.18.0.12"):
        code, report, _ = relayops_check(*lab_options(checks), "--only", "dnsbl")
    failed = [(r["subject"], r["status"]) for r in results(report) if r["status"] != "ok"]
    assert (code, report["ok"], failed) == (1, False, [("198.18.0.12 in dnsbl.lab", "error")])


# Debian's ca-certificates: the public CAs, none of which signed the lab's certificates.
SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


def test_the_inventory_names_the_lab_ca_and_dns(checks: LabChecks, example_repo: Path) -> None:
    """With relayops_ca_bundle and relayops_check_nameserver in the inventory's group data,
    `--repo R --inventory lab` alone checks the lab (TLS chains to the lab CA)."""
    inventory = example_repo / "inventory" / "lab.py"
    text = inventory.read_text()
    assert '"relayops_ca_bundle"' in text and '"relayops_check_nameserver"' in text
    code, report, stderr = relayops_check(
        "--repo", str(example_repo), "--inventory", "lab", "--only", "dns,tls"
    )
    problems = [f"{r['subject']}: {r['message']}" for r in results(report) if r["status"] != "ok"]
    assert (code, problems) == (0, []), stderr
    assert any(r["subject"] == "relay1.relay.example.net:587 chain" for r in results(report))


def test_without_the_lab_ca_the_chain_fails(checks: LabChecks) -> None:
    """The system store does not trust the lab CA: the chain check is not a formality."""
    code, report, _ = relayops_check(
        "--inventory",
        str(INVENTORY),
        "--nameserver",
        checks.nameserver,
        "--only",
        "tls",
        "--ca-bundle",
        SYSTEM_CAS,
    )
    failed = {r["subject"] for r in results(report) if r["status"] == "error"}
    assert code == 1
    assert failed == {
        f"relay{k}.relay.example.net:{port} chain" for k in (1, 2) for port in (25, 587, 465, 993)
    }
