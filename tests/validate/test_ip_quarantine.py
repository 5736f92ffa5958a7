"""A released dedicated IP stays out of use for exactly 365 days (crossref.IP_QUARANTINE).

vandelay (terminated 2026-03-02) released dedicated-2; a new customer asks for it. Both
sides of the boundary are pinned: day 364 is refused, day 365 is accepted, and with two
earlier holders the latest release is the one that counts.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from relayops.loader import load_repo

HASH = (
    "{SHA512-CRYPT}$6$7ebd5fef52a51aab$peCJKyO8uijADYMLBH0vIMiW8KRDv0OZQwPgkc96eHACNyY."
    "Fc7VeqM3H26CuQw3gFsnf.GCm.eLB4boYrRsB/"
)


def customer(cid: str, *, status: str = "", warmup_start: str) -> str:
    """A pro customer on dedicated-2; `status` lines make it a former holder."""
    return (
        f"name: {cid.title()}\ncontact: ops@{cid}.example\n{status}plan: pro\n"
        "placement:\n  dedicated_ip: dedicated-2\n"
        f"warmup: {{schedule: standard-5w, start: {warmup_start}}}\n"
        f"domains:\n  - name: {cid}.example\n    dkim: {{selector: s1}}\n"
        f'users:\n  - login: {cid}\n    password: "{HASH}"\n'
    )


NEWCO = customer("newco", warmup_start="2026-11-01")
# An older holder of the same IP, released long before vandelay.
OLDCO = customer(
    "oldco",
    status="status: terminated\nstatus_reason: contract ended\nstatus_date: 2025-01-10\n",
    warmup_start="2024-09-01",
)
DAY_364 = date(2027, 3, 1)  # 2026-03-02 + 364 days
DAY_365 = date(2027, 3, 2)  # 2026-03-02 + 365 days
REFUSAL = (
    "customers/newco.yaml",
    5,
    3,
    "placement.dedicated_ip",
    # The example records vandelay's release in the ledger, which names its line.
    "IP was released by customer 'vandelay' on 2026-03-02 (policies/released-ips.yaml:6); "
    "it cannot be reused before 2027-03-02",
)


def _findings(repo: Path, today: date) -> list[tuple[str, int, int, str, str]]:
    result = load_repo(repo, today=today, require_dkim_keys=False)  # the keys are not the point
    return [(f.file, f.line, f.column, f.field, f.message) for f in result.findings]


@pytest.fixture
def newco_repo(example_repo: Path) -> Path:
    (example_repo / "customers/newco.yaml").write_text(NEWCO)
    return example_repo


def test_day_364_is_still_quarantined(newco_repo: Path) -> None:
    assert _findings(newco_repo, DAY_364) == [REFUSAL]


def test_day_365_the_ip_is_free_again(newco_repo: Path) -> None:
    assert _findings(newco_repo, DAY_365) == []


def test_the_latest_release_counts_not_the_earliest(newco_repo: Path) -> None:
    (newco_repo / "customers/oldco.yaml").write_text(OLDCO)
    assert _findings(newco_repo, DAY_364) == [REFUSAL]
    assert _findings(newco_repo, DAY_365) == []
