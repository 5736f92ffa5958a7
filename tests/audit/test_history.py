"""history.build on hand-made commit records and blobs (no Git)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from relayops.audit.gitlog import CommitRecord, FileChange
from relayops.audit.history import build, effective_quota, needed_blobs, select

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def commit(*files: FileChange, subject: str = "c") -> CommitRecord:
    return CommitRecord("f" * 40, (), "A", "a@x", WHEN, "N", "", "", subject, files)


def lines(records: list[CommitRecord], blobs: dict[str, bytes]) -> list[str]:
    out = []
    for entry in build(records, blobs):
        for c in entry.changes:
            out.append(f"{c.kind} {c.subject} {c.path or '-'} {c.change} {c.old} {c.new}")
    return out


def test_unparseable_then_repaired() -> None:
    blobs = {"1": b"name: [\n", "2": b"name: X\nplan: starter\n"}
    broken = commit(FileChange("M", "customers/x.yaml", "customers/x.yaml", "0", "1"))
    fixed = commit(FileChange("M", "customers/x.yaml", "customers/x.yaml", "1", "2"))
    blobs["0"] = b"name: X\n"
    assert lines([broken, fixed], blobs) == [
        "customer x - unparseable None None",
        "customer x - repaired None None",
        "customer x name added None X",
        "customer x plan added None starter",
        "customer x status added None active",
        "customer x timezone added None UTC",
    ]
    assert build([broken], blobs)[0].changes[0].note == {
        "reason": "line 2 column 1: YAML syntax error: did not find expected node content"
    }


def test_moved_out_of_the_policy_folders_is_removed() -> None:
    moved = commit(FileChange("R", "customers/x.yaml", "attic/x.yaml", "1", "1"))
    blobs = {"1": b"name: X\n"}
    assert needed_blobs([moved]) == {"1"}
    assert lines([moved], blobs) == [
        "customer x - removed None None",
        "customer x name removed X None",
        "customer x status removed active None",
        "customer x timezone removed UTC None",
    ]


def test_moved_in_is_added_and_other_files_are_ignored() -> None:
    records = [
        commit(FileChange("R", "attic/x.yaml", "customers/x.yaml", "1", "1")),
        commit(FileChange("M", "README.md", "README.md", "2", "3")),
    ]
    assert needed_blobs(records) == {"1"}
    assert lines(records, {"1": b"name: X\nstatus: active\ntimezone: UTC\n"}) == [
        "customer x - added None None",
        "customer x name added None X",
        "customer x status added None active",
        "customer x timezone added None UTC",
    ]
    entries = build(records, {"1": b"{}"})
    assert [len(e.changes) for e in entries] == [3, 0]  # added, status and timezone (defaults)
    assert select(entries) == entries[:1]  # the README-only commit is dropped


def test_notice_and_inventory_changes() -> None:
    blobs = {
        "1": b"Subject: Limit\n\nBody one\n",
        "2": b"Subject: Limit reached\n\nBody one\n",
        "3": b"relays = [('r1', {'relayops_ips': [{'name': 'a', 'address': '10.0.0.1'}]})]\n",
        "4": b"relays = [('r1', {'relayops_ips': [{'name': 'a', 'address': '10.0.0.2'}]})]\n",
    }
    record = commit(
        FileChange(
            "M", "policies/notifications/limit.txt", "policies/notifications/limit.txt", "1", "2"
        ),
        FileChange("M", "inventory/lab.py", "inventory/lab.py", "3", "4"),
    )
    assert lines([record], blobs) == [
        "notices limit subject changed Limit Limit reached",
        "inventory lab relays.hosts[0].relayops_ips[0].address changed 10.0.0.1 10.0.0.2",
    ]


def test_status_back_to_active_notes_the_old_reason() -> None:
    blobs = {
        "1": b"status: suspended\nstatus_reason: unpaid\nstatus_date: 2026-01-01\n",
        "2": b"status: active\n",
    }
    record = commit(FileChange("M", "customers/x.yaml", "customers/x.yaml", "1", "2"))
    status = build([record], blobs)[0].changes[0]
    assert (status.path, status.old, status.new) == ("status", "suspended", "active")
    assert status.note == {"status_reason": "unpaid", "status_date": WHEN.date().replace(month=1)}


def test_effective_quota() -> None:
    plans: dict[str, Any] = {"business": {"daily_quota": 10000}}
    assert effective_quota({"plan": "business"}, plans) == (10000, "plan business")
    assert effective_quota({"plan": "business", "quota_override": 12000}, plans) == (
        12000,
        "quota_override",
    )
    assert effective_quota({"plan": "business", "quota_override": True}, plans) == (
        10000,
        "plan business",
    )
    assert effective_quota({"plan": "gold"}, plans) == (None, "plan 'gold' not found")
    assert effective_quota("text", plans) == (None, "unreadable customer")
