"""The checks' targets follow from the repository: what the outside must see."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from relayops.checks.from_repo import read_credentials, targets_from_repo
from relayops.checks.result import CheckInputError
from relayops.loader import load_repo


def test_lab_targets_from_the_example_repository(example_repo: Path) -> None:
    repo = load_repo(example_repo, today=date(2026, 11, 23)).repo
    assert repo is not None
    creds = read_credentials(example_repo / "lab" / "credentials.lab-only.yaml")
    target = targets_from_repo(repo, repo.inventories["lab"], credentials=creds)

    assert target.service_domain == "relay.example.net"
    assert [h.connect for h in target.hosts] == ["198.18.0.11", "198.18.0.12"]
    by_name = {d.name: d for d in target.sender_domains}
    # pool customers send from every pool address; a dedicated customer from its IP only
    assert by_name["acme.example"].relay_ips == ("198.18.0.11", "198.18.0.121")
    assert by_name["globex.example"].relay_ips == ("198.18.0.111",)
    # suspended and terminated customers are not expected to send
    assert "hooli.example" not in by_name and "vandelay.example" not in by_name
    # the SPF advice is the record `relayops plan` tells the customer to publish
    assert by_name["acme.example"].spf == "v=spf1 include:shared-eu._spf.relay.example.net -all"
    assert by_name["globex.example"].spf == "v=spf1 ip4:198.18.0.111 -all"
    assert by_name["acme.example"].dkim[0].selector == "rly2026"
    assert "BEGIN PUBLIC KEY" in by_name["acme.example"].dkim[0].public_key_pem
    assert target.expected_size == 41943040
    assert [z.zone for z in target.dnsbl_zones] == ["dnsbl.lab"]
    # the service domain's own mail (notices, bounces): each host's default egress
    service = target.service_mail
    assert service is not None
    assert (service.name, service.customer) == ("relay.example.net", "")
    assert service.relay_ips == ("198.18.0.11", "198.18.0.121")
    assert service.spf == "v=spf1 ip4:198.18.0.11 ip4:198.18.0.121 -all"
    assert [k.selector for k in service.dkim] == ["svc2026"]
    login = target.logins[0]
    assert (login.username, login.own_domain) == ("acme-app", "acme.example")
    assert login.foreign_domain != login.own_domain


def test_production_lists_real_blocklists(example_repo: Path) -> None:
    repo = load_repo(example_repo, today=date(2026, 11, 23)).repo
    assert repo is not None
    target = targets_from_repo(repo, repo.inventories["production"])
    zones = {z.zone: z for z in target.dnsbl_zones}
    assert "zen.spamhaus.org" in zones
    assert "127.255.255.254" in zones["zen.spamhaus.org"].refusal_codes
    assert zones["dbl.spamhaus.org"].kind == "domain"
    assert target.logins == ()


def test_a_login_listed_twice_in_the_credentials_is_refused(tmp_path: Path) -> None:
    creds = tmp_path / "creds.yaml"
    creds.write_text("acme-app: one\nacme-app: two\n")
    with pytest.raises(CheckInputError, match=r"creds.yaml:2:1: duplicate key 'acme-app'"):
        read_credentials(creds)
