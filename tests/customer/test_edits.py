"""Edits of existing files: the diff is exactly the change; comments, order and quoting stay."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from customer.helpers import Run, add_free_dedicated_ip, snapshot
from relayops.loader import load_repo

HASH = re.compile(r"\{SHA512-CRYPT\}\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}")
ACME = "customers/acme.yaml"
LEDGER = "policies/released-ips.yaml"


@dataclass
class Edit:
    id: str
    args: tuple[str, ...]
    # file -> (removed lines, added lines), in file order
    diff: dict[str, tuple[list[str], list[str]]]
    stdout_tail: str = ""
    free_ip: bool = False


EDITS = [
    Edit(
        "add-domain",
        ("add-domain", "acme", "acme-news.example"),
        {ACME: ([], ["  - name: acme-news.example", "    dkim: {selector: rly2026}"])},
    ),
    Edit(
        "add-domain-idn",
        ("add-domain", "acme", "Bücher-Acme.example.", "--selector", "b1"),
        {ACME: ([], ["  - name: bücher-acme.example", "    dkim: {selector: b1}"])},
    ),
    Edit(
        "remove-domain",
        ("remove-domain", "acme", "acme-mail.example"),
        {ACME: (["  - name: acme-mail.example", "    dkim: {selector: rly2026}"], [])},
    ),
    Edit(
        "remove-domain-idn-by-ascii",
        ("remove-domain", "soylent", "xn--bcher-soylent-wob.example"),
        {
            "customers/soylent.yaml": (
                ["  - name: bücher-soylent.example", "    dkim: {selector: sf1}"],
                [],
            )
        },
    ),
    Edit(
        "add-login",
        ("add-login", "acme", "acme-billing"),
        {ACME: ([], ["  - login: acme-billing", '    password: "<hash>"'])},
    ),
    Edit(
        "remove-login",
        ("remove-login", "acme", "acme-crm"),
        {
            ACME: (
                [
                    "  - login: acme-crm",
                    '    password: "{SHA512-CRYPT}$6$5c2cc28351f8559d$8ON7OlnqCUzCe1bi/ap2IcNc9Uif'
                    'KbUW.Jevcyh8Q64gqFsHq43tU5/7KYmgar324Hav5LiBr7/5inzPLcOOI0"',
                ],
                [],
            )
        },
    ),
    Edit("set-quota-new", ("set-quota", "acme", "20000"), {ACME: ([], ["quota_override: 20000"])}),
    Edit(
        "set-quota-change",
        ("set-quota", "umbrella", "12000"),
        {"customers/umbrella.yaml": (["quota_override: 15000"], ["quota_override: 12000"])},
    ),
    Edit(
        "suspend",
        ("suspend", "acme", "--reason", "invoice 2026-11 unpaid"),
        {
            ACME: (
                [],
                [
                    "status: suspended",
                    "status_reason: invoice 2026-11 unpaid",
                    "status_date: 2026-11-23",
                ],
            )
        },
    ),
    Edit(
        "reinstate",
        ("reinstate", "hooli"),
        {
            "customers/hooli.yaml": (
                [
                    "status: suspended",
                    "status_reason: renewal invoice unpaid for 5 days",
                    "status_date: 2026-11-18",
                ],
                [],
            )
        },
    ),
    Edit(
        "terminate-suspended-pool",
        ("terminate", "hooli", "--reason", "unpaid for 30 days"),
        {
            "customers/hooli.yaml": (
                [
                    "status: suspended",
                    "status_reason: renewal invoice unpaid for 5 days",
                    "status_date: 2026-11-18",
                ],
                [
                    "status: terminated",
                    "status_reason: unpaid for 30 days",
                    "status_date: 2026-11-23",
                ],
            )
        },
    ),
    Edit(
        "terminate-dedicated",
        ("terminate", "globex", "--reason", "contract ended"),
        {
            "customers/globex.yaml": (
                [],
                [
                    "status: terminated",
                    "status_reason: contract ended",
                    "status_date: 2026-11-23",
                ],
            ),
            LEDGER: (
                [],
                [
                    "  - ip: dedicated-1",
                    "    released: 2026-11-23",
                    "    customer: globex",
                    '    reason: "terminated: contract ended"',
                ],
            ),
        },
        stdout_tail=(
            "IP dedicated-1 released on 2026-11-23: no one else gets it before 2027-11-23\n"
        ),
    ),
    Edit(
        "swap-ip",
        ("swap-ip", "wayne"),
        {
            "customers/wayne.yaml": (
                ["  dedicated_ip: dedicated-3", "  start: 2026-06-01"],
                ["  dedicated_ip: dedicated-4", "  start: 2026-11-23"],
            ),
            LEDGER: (
                [],
                [
                    "  - ip: dedicated-3",
                    "    released: 2026-11-23",
                    "    customer: wayne",
                    '    reason: "paid IP swap"',
                ],
            ),
        },
        stdout_tail=(
            "customer wayne: dedicated IP dedicated-3 -> dedicated-4; warm-up restarts on "
            "2026-11-23; dedicated-3 quarantined until 2027-11-23\n"
            "SPF record the customer publishes at each domain (inventory lab):\n"
            'wayne.example. IN TXT "v=spf1 ip4:198.18.0.123 -all"\n'
        ),
        free_ip=True,
    ),
]


def _changed(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, [HASH.sub("<hash>", line) for line in added]


@pytest.mark.parametrize("edit", EDITS, ids=[e.id for e in EDITS])
def test_diff_is_only_the_change(edit: Edit, run: Run, example_repo: Path) -> None:
    if edit.free_ip:
        add_free_dedicated_ip(example_repo)
    before = snapshot(example_repo)
    result = run(*edit.args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    after = snapshot(example_repo)
    changed = {
        rel for rel in after if before.get(rel) != after[rel] and not rel.startswith("secrets/")
    }
    assert changed == set(edit.diff)
    for rel, expected in edit.diff.items():
        got = _changed(before[rel].decode(), after[rel].decode())
        assert got == expected, rel
    assert result.stdout.endswith(edit.stdout_tail)
    # the written repository is valid as it stands
    assert load_repo(example_repo, today=date(2026, 11, 23)).findings == []


def test_new_ledger_file_when_there_is_none(run: Run, example_repo: Path) -> None:
    (example_repo / LEDGER).unlink()
    result = run("terminate", "wayne", "--reason", "moved to another provider")
    assert result.exit_code == 0, result.stderr
    assert (example_repo / LEDGER).read_text(encoding="utf-8") == (
        "# yaml-language-server: $schema=../schemas/released-ips.schema.json\n"
        "# Dedicated IPs given back: none serves another customer for 365 days after its release.\n"
        "# Written by `relayops customer terminate` and `relayops customer swap-ip`; entries stay\n"
        "# when the old customer's file is deleted, so the quarantine outlives it.\n"
        "released:\n"
        "  - ip: dedicated-3\n"
        "    released: 2026-11-23\n"
        "    customer: wayne\n"
        '    reason: "terminated: moved to another provider"\n'
    )


def test_add_domain_keeps_an_existing_key(run: Run, example_repo: Path) -> None:
    """A domain removed and added again with its selector keeps its published key."""
    key = example_repo / "secrets/dkim/acme-mail.example.rly2026.pub.pem"
    pem = key.read_bytes()
    assert run("remove-domain", "acme", "acme-mail.example").exit_code == 0
    again = run("add-domain", "acme", "acme-mail.example")
    assert again.exit_code == 0, again.stderr
    assert "DKIM key acme-mail.example selector rly2026 kept (it exists already)" in again.stdout
    assert key.read_bytes() == pem


def test_files_keep_their_mode(run: Run, example_repo: Path) -> None:
    path = example_repo / ACME
    path.chmod(0o600)
    assert run("set-quota", "acme", "12000").exit_code == 0
    assert path.stat().st_mode & 0o777 == 0o600
