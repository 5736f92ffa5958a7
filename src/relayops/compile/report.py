"""Print a Plan: Markdown ready to post as a pull-request comment, or JSON for machines."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from relayops.compile.plan import Plan

# The first line of every Markdown plan: CI finds its earlier comment by it and edits
# that one instead of stacking a new comment per push (scripts/plan-comment).
MARKER = "<!-- relayops-plan -->"
# GitHub refuses an issue or pull-request comment body longer than this.
GITHUB_COMMENT_LIMIT = 65_535


def plan_data(plan: Plan) -> dict[str, Any]:
    """The plan for machines (`relayops plan --json`); `ok` first like every report."""
    data: dict[str, Any] = {"ok": True, **dataclasses.asdict(plan)}
    for item, source in zip(data["dns"], plan.dns, strict=True):
        item["zone"] = [r.zone_line() for r in source.records]
    data["ip_zone"] = [r.zone_line() for r in plan.ips]
    data["empty"] = plan.empty
    return data


def plan_json(plan: Plan) -> str:
    data = plan_data(plan)
    return json.dumps({"ok": data.pop("ok"), **dict(sorted(data.items()))}, indent=2) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fence(body: str, lang: str = "") -> list[str]:
    # A diff may itself contain ``` (a notification body): use a longer fence.
    fence = "````" if "```" in body else "```"
    return [f"{fence}{lang}", body.rstrip("\n"), fence]


def risk_section(plan: Plan) -> list[str]:
    """The reviewer's checklist, first in the comment: one row per risk, or an all-clear."""
    out = ["### Risks", ""]
    if not plan.risks:
        out += [
            "None found: no quota raised more than 2×, no customer re-activated, no dedicated "
            "IP skipping its warm-up, no DNS record for a customer to publish.",
            "",
        ]
        return out
    out += ["| risk | customer | detail |", "|---|---|---|"]
    out += [
        f"| **{r.kind}** | {f'`{r.customer}`' if r.customer else 'operator'} | {_cell(r.detail)} |"
        for r in plan.risks
    ]
    return [*out, ""]


def plan_markdown(
    plan: Plan, *, max_chars: int | None = None, full_plan_url: str | None = None
) -> str:
    """The plan as a pull-request comment; cut to `max_chars` with a note when longer."""
    text = _markdown(plan)
    return text if max_chars is None else cap(text, max_chars, full_plan_url=full_plan_url)


def _markdown(plan: Plan) -> str:
    out = [MARKER, f"## relayops plan: inventory `{plan.inventory}` against `{plan.base}`", ""]
    for note in plan.notes:
        out += [f"> {note}", ""]
    if plan.empty:
        out += ["No change to customers, DNS or any host file.", ""]
        return "\n".join(out)
    out += risk_section(plan)

    out += ["### Customers", ""]
    if plan.customers:
        out += ["| customer | change | detail |", "|---|---|---|"]
        out += [f"| `{c.customer}` | {c.kind} | {_cell(c.detail)} |" for c in plan.customers]
    else:
        out.append("No customer change.")
    out.append("")

    if plan.policies:
        out += ["### Policies", "", "| file | item | change | detail |", "|---|---|---|---|"]
        out += [
            f"| `{p.file}` | {p.item} | {p.change} | {_cell(p.detail)} |" for p in plan.policies
        ]
        out.append("")

    if plan.dns:
        out += ["### DNS records to publish", ""]
        for d in plan.dns:
            owner = f"customer `{d.customer}`" if d.customer else "operator"
            out.append(f"**{d.domain}** ({owner}: {d.reason})")
            if d.missing_key:
                out.append(
                    f"- DKIM key missing: run `relayops dkim generate {d.domain} --selector …` "
                    "before deploying."
                )
            out.append("")
            out += _fence("\n".join(f"{r.zone_line()}  ; {r.purpose}" for r in d.records), "dns")
            out.append("")
    if plan.ips:
        out += ["### Reverse DNS for new sending IPs (operator)", ""]
        out += _fence("\n".join(f"{r.zone_line()}  ; {r.purpose}" for r in plan.ips), "dns")
        out.append("")

    out += ["### Hosts", ""]
    for host in plan.hosts:
        if not host.changes:
            out += [f"#### {host.host}: no change", ""]
            continue
        counts = {
            k: sum(1 for c in host.changes if c.change == k)
            for k in ("added", "changed", "removed")
        }
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        out += [f"#### {host.host}: {summary}", ""]
        if host.services:
            actions = "; ".join(f"{s.action} `{s.service}`" for s in host.services)
            out += [f"Services: {actions}.", ""]
        for change in host.changes:
            out += [f"<details><summary>{change.change} <code>{change.path}</code></summary>", ""]
            out += _fence(change.diff, "diff")
            out += ["", "</details>", ""]
    return "\n".join(out)


def _truncation_note(shown: int, total: int, full_plan_url: str | None) -> str:
    where = (
        f"the `relayops-plan` artifact of [this workflow run]({full_plan_url})"
        if full_plan_url
        else "`relayops plan` run locally"
    )
    return (
        f"\n> **Plan truncated**: this comment shows {shown:,} of {total:,} characters. "
        f"The full plan is {where}.\n"
    )


def cap(text: str, max_chars: int, *, full_plan_url: str | None = None) -> str:
    """`text` if it fits in `max_chars`, else its first whole lines and a note, within it.

    A cut inside a code fence or a <details> block closes them, so the note renders as
    text and the rest of the comment is not swallowed by an open fence.
    """
    if len(text) <= max_chars:
        return text
    budget = max_chars - len(_truncation_note(len(text), len(text), full_plan_url)) - 16
    if budget <= 0:
        raise ValueError(f"max_chars {max_chars} leaves no room for the plan")
    kept: list[str] = []
    size = 0
    fence: str | None = None
    details = 0
    for line in text.splitlines(keepends=True):
        closing = (f"\n{fence}" if fence else "") + ("\n</details>" * details)
        if size + len(line) + len(closing) > budget:
            break
        kept.append(line)
        size += len(line)
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
        elif fence is not None and stripped == fence:
            fence = None
        elif fence is None and stripped.startswith("<details>"):
            details += 1
        elif fence is None and stripped == "</details>":
            details -= 1
    body = "".join(kept).rstrip("\n")
    if fence:
        body += f"\n{fence}"
    body += "\n</details>" * details
    return body + "\n" + _truncation_note(len(body), len(text), full_plan_url)
