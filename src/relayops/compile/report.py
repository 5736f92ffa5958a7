"""Print a Plan: Markdown ready to post as a pull-request comment, or JSON for machines."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from relayops.compile.plan import Plan


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


def plan_markdown(plan: Plan) -> str:
    out = [f"## relayops plan: inventory `{plan.inventory}` against `{plan.base}`", ""]
    for note in plan.notes:
        out += [f"> {note}", ""]
    if plan.empty:
        out += ["No change to customers, DNS or any host file.", ""]
        return "\n".join(out)

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
        out += ["### DNS records customers must publish", ""]
        for d in plan.dns:
            out.append(f"**{d.domain}** (customer `{d.customer}`: {d.reason})")
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
        for change in host.changes:
            out += [f"<details><summary>{change.change} <code>{change.path}</code></summary>", ""]
            out += _fence(change.diff, "diff")
            out += ["", "</details>", ""]
    return "\n".join(out)
