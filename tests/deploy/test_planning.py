"""Host plans, lab DNS zones, certificates, counters placement, wheel requirements."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
from cryptography import x509

from relayops.compile.dns_records import DnsRecord
from relayops.deploy import redis_conf as rc
from relayops.deploy.counters import REDIS_DROPIN, REDIS_TLS, redis_files, redis_placement
from relayops.deploy.errors import DeployError
from relayops.deploy.hostplan import INIT_SCRIPT, host_plan
from relayops.deploy.state import Wanted
from relayops.deploy.target import identity_path, load_target, repo_of_inventory
from relayops.deploy.tls import CERT_PATH, KEY_PATH
from relayops.deploy.wheels import missing_requirements
from relayops.lab.publish import lab_zones
from relayops.labca import LabCA, Pem, issue, new_ca, still_good
from relayops.loader import load_repo

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def test_lab_target_compiles_every_lab_relay() -> None:
    target = load_target(ROOT, "lab")
    assert set(target.configs) == {"relay1.relay.example.net", "relay2.relay.example.net"}


def test_an_invalid_repository_is_refused_with_its_findings(example_repo: Path) -> None:
    (example_repo / "customers" / "acme.yaml").write_text("name: [unclosed\n")
    with pytest.raises(DeployError, match="does not validate"):
        load_target(example_repo, "lab")


def test_inventory_file_must_sit_in_an_inventory_folder(tmp_path: Path) -> None:
    assert repo_of_inventory(ROOT / "inventory" / "lab.py") == ROOT
    stray = tmp_path / "lab.py"
    stray.write_text("")
    with pytest.raises(DeployError, match="inventory/"):
        repo_of_inventory(stray)


def test_identity_is_the_inventory_one_unless_the_environment_names_one() -> None:
    repo = load_repo(ROOT).repo
    assert repo is not None
    lab, production = repo.inventories["lab"], repo.inventories["production"]
    assert identity_path(ROOT, lab, {}) == ROOT / "lab/age-identity.lab-only.txt"
    assert identity_path(ROOT, lab, {"RELAYOPS_AGE_IDENTITY": "/k"}) == Path("/k")
    assert identity_path(ROOT, production, {"RELAYOPS_AGE_IDENTITY": "/k"}) == Path("/k")
    with pytest.raises(DeployError, match="RELAYOPS_AGE_IDENTITY"):
        identity_path(ROOT, production, {})


def test_host_plan_adds_secrets_certificate_service_files_and_redis() -> None:
    target = load_target(ROOT, "lab")
    config = target.configs["relay1.relay.example.net"]
    secrets = {s.source: b"-----BEGIN PRIVATE KEY-----\n" for s in config.secrets}
    ca = new_ca(NOW)
    cert = issue(ca, ["relay1.relay.example.net"], ["198.18.0.11"], NOW)
    placement = redis_placement(target.inventory)
    assert placement is not None and placement.host.name == config.host
    init = Wanted(INIT_SCRIPT, b"#!/bin/sh\n", 0o755, "root", "root")
    passwords = rc.RedisPasswords(policyd="p-secret", replica="r-secret", sentinel="s-secret")
    redis = redis_files(placement, passwords, certificate=cert, ca=ca.cert)
    plan = host_plan(
        config, secrets=secrets, certificate=cert, service_files=[init], redis_files=redis,
        ca=ca.cert,
    )  # fmt: skip
    paths = {w.path: w for w in plan.wanted}
    assert {f.path for f in config.files} <= set(paths)
    assert all(paths[s.path].secret and paths[s.path].mode == 0o600 for s in config.secrets)
    assert paths[KEY_PATH].secret and paths[CERT_PATH].content.endswith(ca.cert)
    assert plan.services[0] == "redis-server" and plan.services[6] == "postfix"
    assert plan.services[4:6] == ["relayops-backoff-serve", "relayops-backoff-watch"]
    # then the log follower, then the host's output instances, one per sending IP
    assert plan.services[7] == "relayops-maillog"
    assert plan.services[8:] == [
        "postfix@postfix-ip-dedicated-1",
        "postfix@postfix-ip-dedicated-2",
        "postfix@postfix-pool-shared-eu",
    ]
    assert "/etc/postfix/sender_logins.db" in plan.state_paths()
    # Redis: only loopback and the relay's address, TLS only, users from the ACL file.
    dropin = paths[REDIS_DROPIN]
    assert (dropin.mode, dropin.user, dropin.group, dropin.secret) == (
        0o600,
        "redis",
        "redis",
        True,
    )
    lines = dropin.content.decode().splitlines()
    for wanted in ("protected-mode yes", "bind 127.0.0.1 198.18.0.11", "port 0", "tls-port 6380",
                   f"tls-cert-file {REDIS_TLS.cert}", f"aclfile {rc.ACL_FILE}",
                   "masterauth r-secret", "tls-auth-clients no"):  # fmt: skip
        assert wanted in lines, wanted
    acl = paths[rc.ACL_FILE]
    assert (acl.mode, acl.user, acl.group) == (0o640, "root", "redis")
    assert b"secret" not in acl.content  # hashes only
    assert acl.content.decode().splitlines()[0] == "user default off ~* &* +@all"
    assert (paths[REDIS_TLS.key].mode, paths[REDIS_TLS.key].user) == (0o600, "redis")
    assert "/etc/redis/tls" in {d.path for d in plan.directories}
    assert plan.reload_extra[REDIS_DROPIN] == ("redis-server",)
    # The daemon's password: a secret of mode 600 for its account, named on its command line.
    password = next(s for s in config.secrets if s.path == "/etc/relayops/redis-password")
    assert (password.source, password.mode, password.owner) == (
        "secrets/redis/relayops-policyd.password.age",
        0o600,
        "relayops",
    )
    defaults = next(f for f in config.files if f.path == "/etc/default/relayops-policyd")
    assert b"--store-password-file /etc/relayops/redis-password" in defaults.content


def test_lab_zones_put_each_record_in_its_most_specific_zone() -> None:
    records = [
        DnsRecord("globex.example", "TXT", "v=spf1 -all", ""),
        DnsRecord("g1._domainkey.news.globex.example", "TXT", "v=DKIM1; p=x", ""),
        DnsRecord("relay.example.net", "MX", "10 relay1.relay.example.net", ""),
        DnsRecord("111.0.18.198.in-addr.arpa", "PTR", "o1.relay.example.net", ""),
        DnsRecord("elsewhere.test", "TXT", "dropped", ""),
    ]
    zones = lab_zones(
        records,
        ["globex.example", "news.globex.example", "relay.example.net", "0.18.198.in-addr.arpa"],
    )
    assert [r.name for r in zones["news.globex.example"]] == ["g1._domainkey.news.globex.example."]
    assert zones["relay.example.net"][0].value == "10 relay1.relay.example.net."
    assert zones["0.18.198.in-addr.arpa"][0].value == "o1.relay.example.net."
    assert sum(len(v) for v in zones.values()) == 4


def test_certificates_are_reused_until_names_change_or_renewal_is_due(tmp_path: Path) -> None:
    ca = LabCA(tmp_path / "ca")
    first = ca.host("relay1.example.net", ["o1.example.net"], ["198.18.0.11"], NOW)
    assert ca.host("relay1.example.net", ["o1.example.net"], ["198.18.0.11"], NOW) == first
    later = NOW + dt.timedelta(days=61)  # 29 days left of 90: renew
    assert ca.host("relay1.example.net", ["o1.example.net"], ["198.18.0.11"], later) != first
    other = ca.host("relay1.example.net", ["o2.example.net"], ["198.18.0.11"], later)
    cert = x509.load_pem_x509_certificate(other.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"relay1.example.net", "o2.example.net"}
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 90
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    # Only the CA differs: the same names and addresses, and the same default CA name.
    issued_for = (["relay1.example.net", "o1.example.net"], ["198.18.0.11"])
    assert still_good(first, ca.ca(NOW), *issued_for, NOW)
    foreign = new_ca(NOW)
    assert not still_good(first, foreign, *issued_for, NOW)
    # Even with the foreign CA as its chain, the certificate was not signed by it.
    leaf = first.cert[: -len(ca.ca(NOW).cert)]
    assert not still_good(Pem(leaf + foreign.cert, first.key), foreign, *issued_for, NOW)


def _wheel(directory: Path, name: str, requires: list[str]) -> Path:
    path = directory / f"{name}-1.0-py3-none-any.whl"
    meta = "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            f"{name}-1.0.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{meta}",
        )
    return path


def test_requirements_are_resolved_for_the_hosts_python(tmp_path: Path) -> None:
    """redis needs async-timeout below Python 3.11.3: Debian 12 has 3.11.2."""
    wheels = [
        _wheel(tmp_path, "redis", ['async-timeout>=4.0.3; python_full_version < "3.11.3"']),
        _wheel(tmp_path, "rich", ["pygments>=2", 'ipywidgets; extra == "jupyter"']),
        _wheel(tmp_path, "pygments", []),
    ]
    assert missing_requirements(wheels, "3.11.2") == ["async-timeout>=4.0.3"]
    assert missing_requirements(wheels, "3.11.7") == []


def test_two_labs_with_the_same_relay_names_keep_their_own_certificates(tmp_path: Path) -> None:
    ca = LabCA(tmp_path / "ca")
    lab0 = ca.host("relay1.example.net", [], ["198.18.0.11"], NOW)
    lab1 = ca.host("relay1.example.net", [], ["198.18.1.11"], NOW)
    assert lab0 != lab1
    assert ca.host("relay1.example.net", [], ["198.18.0.11"], NOW) == lab0
