"""The audit as a person reads it (a rich table, Markdown) or a machine does (JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table

from relayops.audit.history import Change, Entry, Snapshot

ABSENT = "—"
# Long values (a notice's body) are cut in tables; --json carries them whole.
MAX_VALUE_CHARS = 80


def show(value: Any, *, limit: int | None = MAX_VALUE_CHARS) -> str:
    """A value as YAML would spell it, on one line: `12000`, `true`, `{selector: s1}`."""
    text = _spell(value)
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _spell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.replace("\n", "\\n")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_spell(k)}: {_spell(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_spell(v) for v in value) + "]"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def describe(change: Change) -> str:
    """`customer acme quota_override: — → 12000`, `customer initech added`…"""
    head = f"{change.kind} {change.subject}"
    if change.change == "renamed":
        return f"{change.kind} renamed: {change.old} → {change.new}"
    if change.change == "unparseable":
        reason = (change.note or {}).get("reason", "")
        return f"{head}: unparseable ({reason})"
    if not change.path:
        return f"{head} {change.change}"
    old = ABSENT if change.change == "added" else show(change.old)
    new = ABSENT if change.change == "removed" else show(change.new)
    text = f"{head} {change.path}: {old} → {new}"
    if change.note:
        text += " (" + ", ".join(f"{k}: {show(v)}" for k, v in change.note.items()) + ")"
    return text


def _pr(entry: Entry) -> str:
    return f"#{entry.pr}" if entry.pr is not None else ""


def history_json(entries: Sequence[Entry], filters: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "filters": filters,
        "commits": [e.as_dict() for e in entries],
        "changes": sum(len(e.changes) for e in entries),
    }


def history_table(entries: Sequence[Entry], console: Console) -> None:
    table = Table(show_lines=False)
    for column in ("date", "commit", "author", "PR", "signature"):
        table.add_column(column, no_wrap=True)
    table.add_column("change", overflow="fold", ratio=1)
    for entry in entries:
        first = True
        for change in entry.changes:
            head = (
                [
                    entry.date.strftime("%Y-%m-%d %H:%M"),
                    entry.commit[:10],
                    entry.author,
                    _pr(entry),
                    entry.signature,
                ]
                if first
                else ["", "", "", "", ""]
            )
            table.add_row(*head, describe(change), end_section=change is entry.changes[-1])
            first = False
    console.print(table)
    total = sum(len(e.changes) for e in entries)
    console.print(f"{len(entries)} commits, {total} changes")


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def history_markdown(entries: Sequence[Entry]) -> str:
    lines = ["| date | commit | author | PR | signature | change |", "|---|---|---|---|---|---|"]
    for entry in entries:
        for change in entry.changes:
            cells = [
                entry.date.strftime("%Y-%m-%d %H:%M"),
                f"`{entry.commit[:10]}`",
                entry.author,
                _pr(entry),
                entry.signature,
                describe(change),
            ]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    total = sum(len(e.changes) for e in entries)
    lines += ["", f"{len(entries)} commits, {total} changes"]
    return "\n".join(lines) + "\n"


# --- relayops audit --at ------------------------------------------------------------------


def _commit_info(snap: Snapshot) -> dict[str, Any]:
    c = snap.commit
    return {
        "commit": c.sha,
        "date": c.date.isoformat(),
        "author": c.author_name,
        "title": c.subject,
    }


def at_json(snap: Snapshot, at: str, customer: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"ok": True, "at": at, "commit": _commit_info(snap)}
    if customer is not None:
        payload["customer"] = snap.customer(customer)
        return payload
    payload["customers"] = [snap.customer(cid) for cid in sorted(snap.data.get("customer", {}))]
    payload["policies"] = {k: v for k, v in snap.data.items() if k != "customer"}
    return payload


def _header(snap: Snapshot, at: str) -> str:
    c = snap.commit
    return (
        f"Policy at {at}: commit {c.sha[:10]} of {c.date.isoformat()} "
        f"by {c.author_name} ({c.subject})"
    )


def at_text(snap: Snapshot, at: str, customer: str | None, *, markdown: bool) -> str:
    """The policy at a date; for one customer, its fields and effective quota."""
    lines = [_header(snap, at), ""]
    if customer is not None:
        view = snap.customer(customer) or {}
        quota = view.get("effective_quota")
        lines.append(f"effective quota: {show(quota)} ({view.get('quota_source')})")
        for key, value in view.items():
            if key not in ("effective_quota", "quota_source"):
                lines.append(f"{'- ' if markdown else '  '}{key}: {show(value, limit=None)}")
        return "\n".join(lines) + "\n"
    rows = [
        [
            cid,
            show(v.get("status", "active")),
            show(v.get("plan")),
            show(v.get("quota_override")) if "quota_override" in v else ABSENT,
            show(v.get("effective_quota")),
        ]
        for cid in sorted(snap.data.get("customer", {}))
        if (v := snap.customer(cid)) is not None
    ]
    header = ["customer", "status", "plan", "quota_override", "effective quota"]
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    lines.append("")
    for kind, subjects in snap.data.items():
        if kind != "customer":
            bullet = "- " if markdown else ""
            lines += [
                f"{bullet}{kind} {name}: {show(v, limit=None)}" for name, v in subjects.items()
            ]
    return "\n".join(lines) + "\n"
