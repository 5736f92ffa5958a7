"""documents: file kinds, subjects, defaults, inventories read without running them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.audit import documents
from relayops.audit.documents import FileKind, Unparseable, classify, read, subjects

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("customers/acme.yaml", FileKind("customer", "acme")),
        ("policies/plans.yaml", FileKind("plan", None, "plans")),
        ("policies/warmup.yaml", FileKind("warmup", None, "schedules")),
        ("policies/throttling.yaml", FileKind("throttling", None, "classes")),
        ("policies/antispam.yaml", FileKind("antispam", "antispam")),
        ("policies/service.yaml", FileKind("service", "service")),
        ("policies/notifications/limit.txt", FileKind("notices", "limit")),
        ("inventory/lab.py", FileKind("inventory", "lab")),
        ("customers/README.md", None),
        ("customers/sub/x.yaml", None),
        ("policies/other.yaml", None),
        ("inventory/__init__.pyc", None),
    ],
)
def test_classify(path: str, kind: FileKind | None) -> None:
    assert classify(path) == kind


def test_customer_passwords_are_fingerprinted_and_defaults_filled() -> None:
    kind = FileKind("customer", "initech")
    value = read(kind, (ROOT / "customers" / "initech.yaml").read_bytes())
    initech = subjects(kind, value)["initech"]
    assert initech["users"] == [{"login": "initech", "password": "{SHA512-CRYPT}#52bdd448"}]
    assert (initech["status"], initech["timezone"]) == ("active", "UTC")
    assert "quota_override" not in initech


def test_plans_split_per_plan_with_defaults() -> None:
    kind = classify("policies/plans.yaml")
    assert kind is not None
    plans = subjects(kind, read(kind, (ROOT / "policies" / "plans.yaml").read_bytes()))
    assert list(plans) == ["starter", "business", "pro"]
    assert plans["starter"]["dedicated_ip"] is False
    assert plans["pro"]["dedicated_ip"] is True


def test_malformed_container_is_diffed_whole() -> None:
    kind = FileKind("plan", None, "plans")
    assert subjects(kind, {"plans": [1, 2]}) == {"plan": {"plans": [1, 2]}}


def test_notice() -> None:
    kind = FileKind("notices", "limit")
    assert read(kind, b"Subject: Hi $name\n\nBody\n") == {"subject": "Hi $name", "body": "Body\n"}
    assert read(kind, b"Hello\n\nBody") == Unparseable(
        "must start with one 'Subject: …' line, then an empty line"
    )
    assert read(kind, b"\xff") == Unparseable("is not UTF-8 text")


def test_inventory_literals_resolved_without_running_code() -> None:
    kind = FileKind("inventory", "lab")
    data = read(kind, (ROOT / "inventory" / "lab.py").read_bytes())
    assert isinstance(data, dict)
    relays = data["relays"]
    assert [h["name"] for h in relays["hosts"]] == [
        "relay1.relay.example.net",
        "relay2.relay.example.net",
    ]
    assert relays["hosts"][0]["ssh_key"] == "/var/lib/relayops-lab/ssh/id_ed25519"
    assert relays["relayops_shared_counters"] == (
        "rediss://relayops-policyd@198.18.0.11:6380/0?ca=/etc/relayops/tls/ca.pem"
    )
    assert "_LAB_KEY" not in data


def test_inventory_code_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = (
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "relays = [('h', {})]\nx = open('f')\n"
    )
    data = read(FileKind("inventory", "x"), source.encode())
    assert data == {"relays": {"hosts": [{"name": "h"}]}}
    assert not marker.exists()
    assert read(FileKind("inventory", "x"), b"relays = (\n") == Unparseable(
        "line 1: Python syntax error: '(' was never closed"
    )


def test_yaml_errors_name_line_and_column() -> None:
    kind = FileKind("customer", "x")
    assert read(kind, b"a: 1\na: 2\n") == Unparseable("line 2 column 1: duplicate key 'a'")
    assert read(kind, b"\x00") == Unparseable(
        "line 1 column 1: contains NUL bytes (is it a binary file?)"
    )


def test_fingerprint() -> None:
    assert (
        documents.fingerprint("{ARGON2ID}$x")
        == "{ARGON2ID}#" + __import__("hashlib").sha256(b"{ARGON2ID}$x").hexdigest()[:8]
    )
    assert documents.fingerprint("plain").startswith("#")


KINDS = [FileKind(k, "s") for k in ("customer", "notices", "inventory", "antispam")] + [
    FileKind("plan", None, "plans")
]


@given(st.binary(max_size=300), st.sampled_from(KINDS))
def test_any_bytes_read_without_crashing(data: bytes, kind: FileKind) -> None:
    value = read(kind, data)
    subjects(kind, value if not isinstance(value, Unparseable) else None)


@given(st.text(max_size=200), st.sampled_from(KINDS))
def test_any_text_reads_without_crashing(text: str, kind: FileKind) -> None:
    value = read(kind, text.encode())
    if not isinstance(value, Unparseable):
        subjects(kind, value)
