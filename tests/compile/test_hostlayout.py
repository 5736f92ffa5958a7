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


def test_the_log_follower_reads_every_instance_log_into_the_daemons_store() -> None:
    """`relayops-maillog`: the pattern matches each output instance's maillog_file, its
    state directory is the relay CLI's default, its store is the daemon's; `plan` starts it."""
    from fnmatch import fnmatch

    from relayops.compile.service_plan import ServiceChange, service_changes
    from relayops.feedback.relay_cli import DEFAULT_MAILLOG_STATE, DEFAULT_RULES

    repo = load_repo(ROOT).repo
    assert repo is not None
    config = compile_inventory(repo, repo.inventories["production"])["relay1.relay.example.net"]
    files = {f.path: f.content.decode() for f in config.files}
    args = files["/etc/default/relayops-maillog"].split('RELAYOPS_MAILLOG_ARGS="')[1]
    daemon = files["/etc/default/relayops-policyd"].split('RELAYOPS_POLICYD_ARGS="')[1]
    words = args.rstrip('"\n').split()
    assert words[:4] == ["feedback", "maillog", "/var/log/postfix-*.log", "--follow"]
    logs = [
        line.split("=", 1)[1].strip()
        for path, text in files.items()
        if path.startswith("/etc/postfix-") and path.endswith("/main.cf")
        for line in text.splitlines()
        if line.startswith("maillog_file")
    ]
    assert logs and all(fnmatch(log, words[2]) for log in logs)
    state = words[words.index("--state-dir") + 1]
    assert state == hostlayout.MAILLOG_STATE_DIR == str(DEFAULT_MAILLOG_STATE)
    assert words[words.index("--rules") + 1] == hostlayout.RULES_PATH == str(DEFAULT_RULES)
    store = words[words.index("--store") :]
    assert " ".join(store) in daemon
    assert ServiceChange("relayops-maillog", "start") in service_changes(None, config)
