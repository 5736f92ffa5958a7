"""`load_repo(..., overlay=…)`: a change validated as if written, with nothing on disk."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from relayops.loader import load_repo

TODAY = date(2026, 11, 23)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_overlay_adds_changes_and_deletes_without_writing(example_repo: Path) -> None:
    before = _files(example_repo)
    acme = (example_repo / "customers/acme.yaml").read_bytes()
    overlay: dict[str, bytes | None] = {
        "customers/acme2.yaml": acme.replace(b"acme.example", b"acme2.example")
        .replace(b"acme-mail.example", b"acme2-mail.example")
        .replace(b"login: acme-", b"login: acme2-"),
        "customers/initech.yaml": None,
        "customers/umbrella.yaml": (example_repo / "customers/umbrella.yaml")
        .read_bytes()
        .replace(b"quota_override: 15000", b"quota_override: 16000"),
    }
    result = load_repo(example_repo, today=TODAY, overlay=overlay, require_dkim_keys=False)
    assert result.findings == [] and result.repo is not None
    assert "acme2" in result.repo.customers and "initech" not in result.repo.customers
    assert result.repo.customers["umbrella"].quota_override == 16000
    assert _files(example_repo) == before


def test_overlay_findings_name_the_overlaid_file(example_repo: Path) -> None:
    text = (example_repo / "customers/acme.yaml").read_bytes()
    overlay: dict[str, bytes | None] = {
        "customers/acme.yaml": text.replace(b"plan: business", b"plan: gold")
    }
    result = load_repo(example_repo, today=TODAY, overlay=overlay)
    assert [str(f) for f in result.findings] == [
        "customers/acme.yaml:5:1: plan: unknown plan; plans in policies/plans.yaml: "
        "business, pro, starter (got 'gold')"
    ]


def test_overlay_can_add_and_remove_the_ledger(example_repo: Path) -> None:
    (example_repo / "customers/vandelay.yaml").unlink()
    newco = (
        b"name: NewCo\ncontact: ops@newco.example\nplan: pro\nplacement:\n"
        b"  dedicated_ip: dedicated-2\nwarmup: {schedule: standard-5w, start: 2026-11-01}\n"
    )
    changes: dict[str, bytes | None] = {"customers/newco.yaml": newco}
    refused = load_repo(example_repo, today=TODAY, overlay=changes)
    assert [f.field for f in refused.findings] == ["placement.dedicated_ip"]
    without_ledger = {**changes, "policies/released-ips.yaml": None}
    assert load_repo(example_repo, today=TODAY, overlay=without_ledger).findings == []
