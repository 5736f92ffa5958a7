"""The plan's risk section (table of cases, both sides of each boundary) and its size cap."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from relayops.compile.loading import load_repo
from relayops.compile.plan import (
    RISK_COLD_IP,
    RISK_DNS,
    RISK_QUOTA,
    RISK_REACTIVATED,
    Plan,
    Risk,
    make_plan,
)
from relayops.compile.report import GITHUB_COMMENT_LIMIT, MARKER, cap, plan_markdown
from relayops.model import Repo

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "throttling" / "repo"
TODAY = date(2026, 12, 1)
Edit = Callable[[Path], None]


def replace(file: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))

    return edit


def quota(value: int, plan: str = "starter") -> Edit:
    return replace(
        "customers/alpha.yaml", "plan: starter\n", f"plan: {plan}\nquota_override: {value}\n"
    )


def warmup_start(day: str) -> Edit:
    return replace("customers/dedi.yaml", "start: 2026-11-10", f"start: {day}")


SUSPENDED = replace(
    "customers/alpha.yaml",
    "plan: starter\n",
    "plan: starter\nstatus: suspended\nstatus_reason: unpaid invoice 42\nstatus_date: 2026-11-22\n",
)
NEW_DOMAIN = replace(
    "customers/alpha.yaml",
    "domains:\n",
    "domains:\n  - name: shop.alpha.example\n    dkim: {selector: s2027}\n",
)


def loaded(tmp: Path, name: str, edits: list[Edit]) -> Repo:
    root = tmp / name
    shutil.copytree(GOLDEN, root)
    for edit in edits:
        edit(root)
    # The plan shows a new domain whose key is not generated yet (the "key missing" note).
    result = load_repo(root, require_dkim_keys=False)
    assert result.repo is not None, [str(f) for f in result.findings]
    return result.repo


def plan_of(tmp: Path, base_edits: list[Edit], head_edits: list[Edit]) -> Plan:
    return make_plan(
        base_ref="main",
        inventory_name="production",
        base=loaded(tmp, "base", base_edits),
        head=loaded(tmp, "head", head_edits),
        base_hosts={},
        head_hosts={},
        head_keys=lambda _domain, _selector: None,
        base_keys=lambda _domain, _selector: None,
        today=TODAY,
    )


def dns_risk(domain: str, reason: str) -> Risk:
    return Risk(
        RISK_DNS,
        "alpha",
        f"{domain} ({reason}): 2 record(s) the customer publishes before this merges, or "
        "its mail fails SPF/DKIM/DMARC; its DKIM key is not generated yet",
    )


CASES: list[tuple[str, list[Edit], list[Edit], list[Risk]]] = [
    ("no change", [], [], []),
    ("quota exactly 2x is not a risk", [], [quota(2000)], []),
    (
        "quota just over 2x",
        [],
        [quota(2001, plan="pro")],
        [Risk(RISK_QUOTA, "alpha", "1000 → 2001 recipients/day (×2.0)")],
    ),
    (
        "quota 50x by a plan change",
        [],
        [replace("customers/alpha.yaml", "plan: starter", "plan: pro")],
        [Risk(RISK_QUOTA, "alpha", "1000 → 50000 recipients/day (×50.0)")],
    ),
    ("quota lowered", [quota(2000)], [], []),
    (
        "suspended customer re-activated: its domains' DNS shows again",
        [SUSPENDED],
        [],
        [
            Risk(
                RISK_REACTIVATED,
                "alpha",
                "suspended → active (was: unpaid invoice 42): its 1 login(s) can send again",
            ),
            dns_risk("alpha.example", "customer reactivated"),
            dns_risk("alpha-news.example", "customer reactivated"),
        ],
    ),
    ("customer suspended is no risk", [], [SUSPENDED], []),
    ("warm-up restarted today: day 1", [], [warmup_start("2026-12-01")], []),
    ("warm-up on the last day of its first stage (day 7)", [], [warmup_start("2026-11-25")], []),
    (
        "warm-up starting on day 8 skips the first stage",
        [],
        [warmup_start("2026-11-24")],
        [
            Risk(
                RISK_COLD_IP,
                "dedi",
                "dedi-1: warm-up standard-5w from 2026-11-24 starts on day 8 (2000/day), "
                "skipping its first 7 day(s)",
            )
        ],
    ),
    (
        "warm-up already over",
        [],
        [warmup_start("2026-10-01")],
        [
            Risk(
                RISK_COLD_IP,
                "dedi",
                "dedi-1: warm-up standard-5w from 2026-10-01 ended on 2026-11-04; "
                "the IP sends at full volume from its first day",
            )
        ],
    ),
    (
        "an unchanged, finished warm-up is no new risk",
        [warmup_start("2026-10-01")],
        [warmup_start("2026-10-01")],
        [],
    ),
    (
        "new sender domain: DNS to publish",
        [],
        [NEW_DOMAIN],
        [dns_risk("shop.alpha.example", "new sender domain")],
    ),
]


@pytest.mark.parametrize(
    ("base_edits", "head_edits", "expected"),
    [pytest.param(b, h, e, id=name) for name, b, h, e in CASES],
)
def test_risks(
    tmp_path: Path, base_edits: list[Edit], head_edits: list[Edit], expected: list[Risk]
) -> None:
    assert plan_of(tmp_path, base_edits, head_edits).risks == expected


def test_risk_section_comes_first_in_the_comment(tmp_path: Path) -> None:
    text = plan_markdown(plan_of(tmp_path, [], [quota(2001, plan="pro")]))
    lines = text.splitlines()
    assert lines[0] == MARKER
    assert lines[3:7] == [
        "### Risks",
        "",
        "| risk | customer | detail |",
        "|---|---|---|",
    ]
    assert (
        lines[7]
        == "| **quota raised more than 2×** | `alpha` | 1000 → 2001 recipients/day (×2.0) |"
    )
    assert text.index("### Risks") < text.index("### Customers") < text.index("### Hosts")


def test_risk_section_all_clear(tmp_path: Path) -> None:
    text = plan_markdown(plan_of(tmp_path, [], [quota(2000)]))
    assert "### Risks\n\nNone found: no quota raised more than 2×" in text


BIG = "\n".join(
    [MARKER, "## plan", "", "### Hosts", ""]
    + [
        line
        for n in range(400)
        for line in (
            f"<details><summary>changed <code>/etc/f{n}</code></summary>",
            "",
            "```diff",
            *(f"+line {n}.{k} " + "x" * 60 for k in range(5)),
            "```",
            "",
            "</details>",
            "",
        )
    ]
)


def test_cap_leaves_a_short_plan_alone() -> None:
    assert cap(BIG, len(BIG)) == BIG
    assert cap("short\n", 1000) == "short\n"


@pytest.mark.parametrize("limit", [2000, 2001, 10_000, 60_000])
def test_cap_cuts_a_long_plan_within_the_limit_and_closes_blocks(limit: int) -> None:
    assert len(BIG) > 60_000
    out = cap(BIG, limit, full_plan_url="https://github.example/o/r/actions/runs/7")
    assert len(out) <= limit
    body, note = out.rsplit("\n> **Plan truncated**", 1)
    assert note.endswith(
        f" of {len(BIG):,} characters. The full plan is the `relayops-plan` artifact of "
        "[this workflow run](https://github.example/o/r/actions/runs/7).\n"
    )
    assert BIG.startswith(body.split("\n```\n</details>")[0].rstrip("\n"))
    assert body.count("```") % 2 == 0  # every fence closed
    assert body.count("<details>") == body.count("</details>")


def test_cap_note_without_url_points_at_a_local_run() -> None:
    out = cap(BIG, 5000)
    assert out.endswith("The full plan is `relayops plan` run locally.\n")


def test_cap_refuses_a_limit_with_no_room() -> None:
    with pytest.raises(ValueError, match="no room"):
        cap(BIG, 100)


def test_the_workflow_cap_is_under_githubs_limit() -> None:
    workflow = (Path(__file__).resolve().parents[2] / ".github/workflows/ci.yml").read_text()
    assert "--max-chars 60000" in workflow
    assert 60_000 < GITHUB_COMMENT_LIMIT == 65_535
