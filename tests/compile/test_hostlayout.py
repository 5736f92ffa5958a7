"""The host layout (relayops/hostlayout.py) is what every rendered file and the daemon use."""

from __future__ import annotations

import json
from pathlib import Path

from relayops import hostlayout
from relayops.compile import compile_inventory
from relayops.loader import load_repo
from relayops.policyd.cli import policyd
from relayops.policyd.contract import PolicyFile

ROOT = Path(__file__).resolve().parents[2]


def rendered() -> dict[str, str]:
    repo = load_repo(ROOT).repo
    assert repo is not None
    config = compile_inventory(repo, repo.inventories["production"])["relay1.relay.example.net"]
    return {f.path: f.content.decode() for f in config.files}


def test_every_side_of_each_socket_names_the_same_place() -> None:
    files = rendered()
    main_cf = files["/etc/postfix/main.cf"]
    assert f"check_policy_service {hostlayout.POLICY_SERVICE}" in main_cf
    assert (
        f"relayops_milters = {hostlayout.MESSAGE_MILTER_POSTFIX}, {hostlayout.DKIM_MILTER_POSTFIX}"
        in main_cf
    )
    assert f"smtpd_sasl_path = {hostlayout.SASL_PATH}" in main_cf
    assert f"smtpd_tls_cert_file = {hostlayout.TLS_CERT}" in main_cf
    assert f"smtpd_tls_key_file = {hostlayout.TLS_KEY}" in main_cf
    assert f"Socket\t\t\t{hostlayout.DKIM_MILTER_OPENDKIM}" in files["/etc/opendkim.conf"]
    assert any(hostlayout.SASL_SOCKET in text for path, text in files.items() if "dovecot" in path)
    defaults = files["/etc/default/relayops-policyd"]
    assert f"--rules {hostlayout.RULES_PATH} --listen {hostlayout.POLICY_LISTEN}" in defaults
    assert hostlayout.RULES_PATH in files


def test_the_daemon_default_store_is_the_layout_one() -> None:
    store = next(p for p in policyd.params if p.name == "store_spec")
    assert store.default == hostlayout.SQLITE_STORE


def test_the_compiled_policy_json_is_a_policy_file() -> None:
    data = json.loads(rendered()[hostlayout.RULES_PATH])
    parsed = PolicyFile.model_validate(data)
    assert parsed.schema_version == 1
    assert sorted(parsed.customers) == sorted(data["customers"])
