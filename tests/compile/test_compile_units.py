"""Unit tests of the compiler's pure parts, on the golden input repositories."""

from __future__ import annotations

import gc
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from relayops.compile import CompileError, compile_inventory
from relayops.compile.cli import dkim, render
from relayops.compile.dkim import (
    DkimKeyError,
    decrypt_key,
    generate_key,
    new_identity,
    public_key_der,
)
from relayops.compile.dns_records import (
    domain_records,
    ip_records,
    service_domain_records,
    service_records,
    txt_strings,
)
from relayops.compile.loading import load_frozen
from relayops.compile.placement import default_egress, host_egresses
from relayops.compile.policy import policy_rules
from relayops.compile.postfix import sender_egress_rows, sender_login_rows, transports
from relayops.compile.templates import TemplateError, Templates
from relayops.loader import load_repo
from relayops.model import Repo

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def golden(case: str) -> Repo:
    repo = load_repo(GOLDEN / case / "repo", today=date(2026, 11, 23)).repo
    assert repo is not None
    return repo


@pytest.mark.parametrize("enabled", [True, False])
def test_load_frozen_leaves_the_callers_gc_setting(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        result = load_frozen(GOLDEN / "shared-pool" / "repo")
        assert result.repo is not None
        assert gc.isenabled() is enabled
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()


def test_warmup_stages_resolve_to_inclusive_dates_from_the_start() -> None:
    repo = golden("dedicated-ip")
    host = repo.inventories["production"].hosts[0]
    dedi = policy_rules(repo, host).customers["dedi"]
    assert dedi.model_dump(mode="json")["warmup"] == [
        {"first_day": "2026-11-10", "last_day": "2026-11-16", "daily_cap": 200, "isp_caps": {}},
        {"first_day": "2026-11-17", "last_day": "2026-11-30", "daily_cap": 2000, "isp_caps": {}},
        {"first_day": "2026-12-01", "last_day": "2026-12-14", "daily_cap": 20000, "isp_caps": {}},
    ]
    assert dedi.daily_quota == 50000 and dedi.warn_ratio == 0.9
    assert policy_rules(repo, host).customers["alpha"].warmup == []


def test_quota_override_is_resolved() -> None:
    repo = golden("shared-pool")
    host = repo.inventories["production"].hosts[0]
    assert policy_rules(repo, host).customers["beta"].daily_quota == 1500


def test_suspended_customer_keeps_its_rules_but_loses_its_logins() -> None:
    repo = golden("suspended")
    host = repo.inventories["production"].hosts[0]
    rules = policy_rules(repo, host).customers["susp"]
    assert rules.status == "suspended"
    assert rules.status_reason is not None and rules.status_reason.startswith("complaint rate")
    assert all("susp" not in key for key, _ in sender_login_rows(repo, host))


def test_each_host_serves_only_customers_of_its_ips() -> None:
    repo = golden("several-hosts")
    relay1, relay2 = repo.inventories["production"].hosts
    assert set(policy_rules(repo, relay1).customers) == {"multi", "dedi"}
    assert set(policy_rules(repo, relay2).customers) == {"multi", "usco"}
    assert [e.transport for e in host_egresses(relay2)] == ["pool-eu", "pool-us"]
    assert default_egress(relay2).transport == "pool-eu"
    assert sender_egress_rows(repo, relay2) == [
        ("usco.example", "FILTER relayops-handoff:[127.0.0.1]:10102")
    ]


def test_submission_instance_has_only_the_handoff_transport() -> None:
    repo = golden("throttling")
    host = repo.inventories["production"].hosts[0]
    assert [(t.name, t.bind_address) for t in transports(host, repo.throttling)] == [
        ("relayops-handoff", None)
    ]


def test_dns_records_for_a_dedicated_domain() -> None:
    repo = golden("dedicated-ip")
    inventory = repo.inventories["production"]
    dedi = repo.customers["dedi"]
    records = domain_records(
        dedi, dedi.domains[0], inventory, repo.service, {"d2026": b"\x30\x01\x00"}
    )
    text = {r.type + " " + r.name: r.value for r in records}
    assert text["TXT dedi.example"] == "v=spf1 ip4:192.0.2.20 -all"
    assert text["TXT d2026._domainkey.dedi.example"] == "v=DKIM1; k=rsa; p=MAEA"
    assert text["TXT _dmarc.dedi.example"].startswith("v=DMARC1; p=none")


def test_ptr_and_service_records() -> None:
    repo = golden("several-hosts")
    inventory = repo.inventories["production"]
    ip = inventory.hosts[1].ips[1]
    assert [r.zone_line() for r in ip_records(ip)] == [
        "12.2.0.192.in-addr.arpa. IN PTR o2.relay.example.net.",
        "o2.relay.example.net. IN A 192.0.2.12",
    ]
    lines = [r.zone_line() for r in service_records(inventory, repo.service)]
    assert 'eu._spf.relay.example.net. IN TXT "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 -all"' in lines
    assert "relay.example.net. IN MX 10 relay2.relay.example.net." in lines


def test_service_domain_records() -> None:
    repo = golden("several-hosts")
    inventory = repo.inventories["production"]
    records = service_domain_records(inventory, repo.service, {"svc2026": b"\x30\x00"})
    assert [(r.name, r.value) for r in records] == [
        ("_dmarc.relay.example.net", "v=DMARC1; p=reject; adkim=s; aspf=r; "
         "rua=mailto:postmaster@relay.example.net"),
        ("_smtp._tls.relay.example.net", "v=TLSRPTv1; rua=mailto:postmaster@relay.example.net"),
        ("o1.relay.example.net", "v=spf1 ip4:192.0.2.20 -all"),
        ("o2.relay.example.net", "v=spf1 ip4:192.0.2.12 -all"),
        ("relay.example.net", "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 -all"),
        ("relay1.relay.example.net", "v=spf1 ip4:192.0.2.10 -all"),
        ("relay2.relay.example.net", "v=spf1 ip4:192.0.2.11 -all"),
        ("svc2026._domainkey.relay.example.net", "v=DKIM1; k=rsa; p=MAA="),
    ]  # fmt: skip
    # a selector whose key was never generated gets no record
    assert len(service_domain_records(inventory, repo.service, {"svc2026": None})) == 7


def test_long_txt_is_split_in_255_octet_strings() -> None:
    parts = txt_strings("x" * 600)
    assert [len(p) for p in parts] == [255, 255, 90]


def test_templates_refuse_undefined_values(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/x.j2").write_text("{{ missing }}\n")
    with pytest.raises(TemplateError, match="missing"):
        Templates(tmp_path).render("/etc/x")


def test_every_rendered_file_opens_with_the_managed_header() -> None:
    for name, config in compile_inventory(
        golden("throttling"), golden("throttling").inventories["production"]
    ).items():
        for item in config.files:
            if item.path.endswith(".json"):
                continue  # JSON has no comments; policy.json is the documented contract
            first = item.content.decode().splitlines()[0]
            assert first.startswith("# managed by relayops — edit the repository instead"), (
                name,
                item.path,
            )


def test_dkim_key_round_trip(tmp_path: Path) -> None:
    secret, public = new_identity()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/recipients.txt").write_text(f"# test\n{public}\n")
    identity = tmp_path / "id.txt"
    identity.write_text(secret + "\n")
    files = generate_key(tmp_path, "Example.COM", "s1")
    assert files.private_age.name == "example.com.s1.key.age"
    assert b"PRIVATE KEY" not in files.private_age.read_bytes()
    pem = decrypt_key(tmp_path, "example.com", "s1", identity)
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert public_key_der(tmp_path, "example.com", "s1") is not None
    with pytest.raises(DkimKeyError, match="already exists"):
        generate_key(tmp_path, "example.com", "s1")
    other, _ = new_identity()
    identity.write_text(other + "\n")
    with pytest.raises(DkimKeyError, match="cannot be decrypted"):
        decrypt_key(tmp_path, "example.com", "s1", identity)


def test_dkim_generate_needs_recipients(tmp_path: Path) -> None:
    result = CliRunner().invoke(dkim, ["generate", "a.example", "--selector", "s", "--repo",
                                       str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2
    assert "recipients.txt is missing" in result.output


def test_example_keys_decrypt_with_the_lab_identity() -> None:
    root = Path(__file__).resolve().parents[2]
    pem = decrypt_key(root, "acme.example", "rly2026", root / "lab/age-identity.lab-only.txt")
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_render_writes_trees_and_manifests(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        render,
        ["--repo", str(GOLDEN / "several-hosts/repo"), "--host", "relay2.relay.example.net",
         "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["hosts"][0]["host"] == "relay2.relay.example.net"
    assert (out / "relay2.relay.example.net/etc/postfix/main.cf").is_file()
    assert not (out / "relay1.relay.example.net").exists()
    manifest = json.loads((out / "relay2.relay.example.net.manifest.json").read_text())
    expected = {"path": "/etc/dovecot/relayops-users", "mode": "0640", "owner": "root",
                "group": "dovecot", "reload": None, "map_command": None}  # fmt: skip
    assert expected in manifest["files"]


def test_render_unknown_host_and_invalid_repo_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        render, ["--repo", str(GOLDEN / "shared-pool/repo"), "--host", "nope", "--out",
                 str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert (
        result.output == "relayops render: unknown host(s) nope; hosts: relay1.relay.example.net\n"
    )
    result = CliRunner().invoke(render, ["--repo", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "│ customers/:1:1 " in result.output and "│ folder is missing " in result.output
    # 15: among them each of the eight notice kinds' missing template (policyd/notices.py)
    assert result.output.endswith(
        f"relayops render: {tmp_path}: invalid repository (15 error(s) above); fix them first\n"
    )


def test_render_reports_a_compile_error_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise CompileError("relay1: two entries for one path; this is a compiler bug")

    monkeypatch.setattr("relayops.compile.cli.compile_inventory", broken)
    result = CliRunner().invoke(
        render,
        ["--repo", str(GOLDEN / "shared-pool/repo"), "--inventory", "production",
         "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert not isinstance(result.exception, CompileError)
    assert result.output == (
        "relayops render: cannot compile inventory production: "
        "relay1: two entries for one path; this is a compiler bug\n"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.real
@pytest.mark.parametrize("inventory", ["production", "lab"])
def test_example_repository_renders_and_the_real_tools_accept_it(
    inventory: str, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[2]
    result = CliRunner().invoke(
        render,
        ["--repo", str(root), "--inventory", inventory, "--out", str(tmp_path), "--check",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    hosts = report["hosts"]
    assert len(hosts) >= 2
    for host in hosts:
        # Postfix twice (check, postconf -n) per instance: the submission one and one per
        # sending IP (three on each example relay), then OpenDKIM and Dovecot.
        assert [c["ok"] for c in host["checks"]] == [True] * (2 * 4 + 2), host["checks"]
        assert host["checks"][2]["tool"].startswith("postfix check (postfix-ip-dedicated-")


def test_secrets_hold_no_plaintext_private_key() -> None:
    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "secrets/dkim").iterdir())
    assert files
    for path in files:
        data = path.read_bytes()
        if path.name.endswith(".key.age"):
            assert data.startswith(b"age-encryption.org/v1\n"), path
        else:
            assert path.name.endswith(".pub.pem"), path
            assert data.startswith(b"-----BEGIN PUBLIC KEY-----"), path


def test_every_example_domain_has_its_dkim_key() -> None:
    """Stale-check: a domain added to customers/ needs `relayops dkim generate --missing`."""
    root = Path(__file__).resolve().parents[2]
    repo = load_repo(root).repo
    assert repo is not None
    missing = [
        f"{d.name} ({d.dkim.selector})"
        for c in repo.customers.values()
        for d in c.domains
        if public_key_der(root, d.name, d.dkim.selector) is None
    ]
    assert not missing, f"run `relayops dkim generate --missing`: no key for {missing}"
