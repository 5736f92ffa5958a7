"""The year's quarantine of a released dedicated IP, on both sides of its boundary.

The release is known from the ledger (policies/released-ips.yaml) even when the old
customer's file is gone, and from a terminated customer's file when the ledger lacks it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from relayops.loader import load_repo
from relayops.quarantine import ledger_lines

NEWCO = """name: NewCo
contact: ops@newco.example
plan: pro
placement:
  dedicated_ip: dedicated-2
warmup: {schedule: standard-5w, start: 2027-03-01}
domains:
  - name: newco.example
    dkim: {selector: n1}
users: []
"""
FROM_LEDGER = (
    "customers/newco.yaml:5:3: placement.dedicated_ip: IP was released by customer 'vandelay' "
    "on 2026-03-02 (policies/released-ips.yaml:6); it cannot be reused before 2027-03-02 "
    "(got 'dedicated-2')"
)
FROM_FILE = (
    "customers/newco.yaml:5:3: placement.dedicated_ip: IP was released by customer 'vandelay' "
    "on 2026-03-02 (customers/vandelay.yaml: terminated); it cannot be reused before 2027-03-02 "
    "(got 'dedicated-2')"
)


@pytest.mark.parametrize(
    ("source", "today", "expected"),
    [
        ("ledger", date(2027, 3, 1), [FROM_LEDGER]),  # day 364 after the release
        ("ledger", date(2027, 3, 2), []),  # day 365
        ("file", date(2027, 3, 1), [FROM_FILE]),
        ("file", date(2027, 3, 2), []),
    ],
    ids=["ledger-day-364", "ledger-day-365", "file-day-364", "file-day-365"],
)
def test_quarantine_boundary(
    source: str, today: date, expected: list[str], example_repo: Path
) -> None:
    if source == "ledger":  # the old customer's file is gone: only the ledger knows
        (example_repo / "customers/vandelay.yaml").unlink()
    else:  # a repository from before the ledger
        (example_repo / "policies/released-ips.yaml").unlink()
    (example_repo / "customers/newco.yaml").write_text(NEWCO, encoding="utf-8")
    result = load_repo(example_repo, today=today, require_dkim_keys=False)
    assert [str(f) for f in result.findings] == expected


def test_a_terminated_customer_keeps_its_ip_without_finding(example_repo: Path) -> None:
    """vandelay still names dedicated-2: a terminated customer holds nothing."""
    assert load_repo(example_repo, today=date(2026, 3, 3)).findings == []


def test_ledger_lines() -> None:
    text = b"# c\nreleased:\n  - ip: a\n    released: 2026-01-01\n  - {ip: b}\n"
    assert ledger_lines(text) == [3, 5]
    assert ledger_lines(b"released: [\n") == []
    assert ledger_lines(b"- a\n") == []
