"""Targets file parsing, and the report's ordering and rendering."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from relayops.checks.parallel import gather
from relayops.checks.report import grouped, render, to_json
from relayops.checks.result import CheckInputError, error, ok, warning
from relayops.checks.target import load_targets, parse_targets


def test_targets_read_key_files_and_password_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "k.pem").write_text("-----BEGIN PUBLIC KEY-----\n...\n")
    monkeypatch.setenv("APP_PW", "s3cret")
    data = {
        "service_domain": "relay.test",
        "hosts": [{"fqdn": "r1.relay.test", "ips": [{"address": "198.18.0.11", "helo": "r1"}]}],
        "sender_domains": [
            {
                "name": "acme.test",
                "customer": "acme",
                "relay_ips": ["198.18.0.11"],
                "dkim": [{"selector": "s1", "public_key_file": "k.pem"}],
            },
            {"name": "other.test", "customer": "other", "relay_ips": ["198.18.0.11"]},
        ],
        "logins": [
            {
                "customer": "acme",
                "username": "app",
                "password_env": "APP_PW",
                "own_domain": "acme.test",
                "foreign_domain": "other.test",
            },
            {
                "customer": "other",
                "username": "other-app",
                "password": "x",
                "own_domain": "other.test",
                "foreign_domain": "acme.test",
            },
        ],
    }
    (tmp_path / "t.json").write_text(json.dumps(data))
    target = load_targets(tmp_path / "t.json")
    assert target.hosts[0].connect_address == "198.18.0.11"
    assert target.hosts[0].ports.submission == 587
    assert target.sender_domains[0].dkim[0].public_key_pem.startswith("-----BEGIN PUBLIC KEY")
    assert target.logins[0].password == "s3cret"
    assert "s3cret" not in repr(target.logins[0])
    only_acme = target.for_customer("acme")
    assert [d.name for d in only_acme.sender_domains] == ["acme.test"]
    assert [x.username for x in only_acme.logins] == ["app"]
    with pytest.raises(CheckInputError, match="no sender domain or login for customer 'x'"):
        target.for_customer("x")


def test_targets_errors_name_the_field() -> None:
    with pytest.raises(CheckInputError, match=r"hosts\.0\.ips: Field required"):
        parse_targets({"service_domain": "relay.test", "hosts": [{"fqdn": "r1"}]})
    with pytest.raises(CheckInputError, match=r"set \$NOPE_PW"):
        parse_targets(
            {
                "service_domain": "r.test",
                "logins": [{"username": "u", "password_env": "NOPE_PW"}],
            }
        )


def test_report_puts_failures_first_and_renders() -> None:
    results = [
        ok("dns", "customer a", "a.test SPF", "fine."),
        warning("tls", "host r1", "r1:25 expiry", "soon."),
        error("dns", "customer b", "b.test DMARC", "missing; publish it."),
        ok("dns", "customer b", "b.test SPF", "fine."),
    ]
    order = [(name, [r.status.value for r in items]) for name, items in grouped(results)]
    assert order == [
        ("customer b", ["error", "ok"]),
        ("host r1", ["warning"]),
        ("customer a", ["ok"]),
    ]
    data = to_json(results)
    assert data["ok"] is False
    assert data["summary"] == {"ok": 2, "warning": 1, "error": 1}
    console = Console(record=True, width=160)
    render(results, console)
    text = console.export_text()
    assert text.index("customer b") < text.index("host r1") < text.index("customer a")
    assert "1 error(s), 1 warning(s), 2 ok" in text


def test_gather_keeps_input_order_under_concurrency() -> None:
    def slow_first(n: int) -> list[int]:
        time.sleep(0.05 if n == 0 else 0)
        return [n, n * 10]

    assert gather(slow_first, [0, 1, 2], workers=3) == [0, 0, 1, 10, 2, 20]
    assert gather(slow_first, [0, 1, 2], workers=1) == [0, 0, 1, 10, 2, 20]
