"""`relayops warmup status|advance`: each dedicated IP's warm-up, gated on what receivers said.

`status` reports; `advance` writes `warmup.stage: N+1` into the customer's file (round
trip, comments kept, the whole repository validated first) for each IP whose last
days are under the ceilings of policies/warmup.yaml, and prints the pull request's
message with the figures; an IP that may not advance is held, and the reasons said
(exit 1). Delivery records come from the relays' Postfix logs (`--maillog`), read by
warmup/deliveries.py (docs/warmup.md).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from relayops import customer_edits as edits
from relayops.commands.options import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    emit_json,
    fail,
    json_option,
    repo_option,
)
from relayops.commands.repo import load_valid_repo, print_findings
from relayops.crossref import customer_file
from relayops.loader import load_repo
from relayops.model import Repo
from relayops.roundtrip import RoundTripError
from relayops.staging import apply
from relayops.warmup.deliveries import Delivery, read_maillog
from relayops.warmup.status import IpWarmup, ip_warmup, warming_customers

F = TypeVar("F", bound=Callable[..., Any])
_DATETIME = click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"])


def _maillog_option(*, required: bool) -> Callable[[F], F]:
    return click.option(
        "--maillog",
        "maillogs",
        multiple=True,
        required=required,
        type=click.Path(dir_okay=False, path_type=Path),
        help="A relay's Postfix log (repeat for several relays); '-' reads stdin.",
    )


_log_zone = click.option(
    "--log-zone",
    default="UTC",
    show_default=True,
    help="Time zone of log timestamps without one (traditional syslog format).",
)
_now = click.option(
    "--now",
    type=_DATETIME,
    hidden=True,
    help="The current time, UTC (tests pin the clock with it).",
)


@click.group(epilog=EXIT_CODES_HELP)
def warmup() -> None:
    """Dedicated IPs' warm-up: status per ISP class, and advancing gated on receivers."""


def _clock(now: datetime | None) -> datetime:
    return now.replace(tzinfo=UTC) if now is not None else datetime.now(UTC)


def _deliveries(paths: Sequence[Path], zone_name: str, now: datetime) -> list[Delivery]:
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"--log-zone: unknown IANA time zone {zone_name!r}")
    out: list[Delivery] = []
    for path in paths:
        try:
            if str(path) == "-":
                out += read_maillog(sys.stdin, zone=zone, now=now)
                continue
            with path.open(encoding="utf-8", errors="surrogateescape") as handle:
                out += read_maillog(handle, zone=zone, now=now)
        except OSError as exc:
            fail(f"{path}: cannot read: {exc.strerror}")
    return out


def _selected(repo: Repo, ips: Sequence[str]) -> list[str]:
    known = {c.placement.dedicated_ip for c in warming_customers(repo)}
    for ip in ips:
        if ip not in known:
            fail(
                f"{ip}: no customer warms up a dedicated IP of that name; warming: "
                + (", ".join(sorted(x for x in known if x)) or "none")
            )
    return list(ips)


def _rates_lines(entry: IpWarmup) -> list[str]:
    lines = []
    for name, tally in sorted(entry.rates.by_class.items()):
        lines.append(
            f"  {name}: {tally.attempts} attempted, {tally.sent} sent, "
            f"{tally.deferred} deferred ({tally.deferral_rate * 100:.1f} %), "
            f"{tally.bounced} bounced ({tally.bounce_rate * 100:.1f} %), "
            f"{tally.complaints} complaints ({tally.complaint_rate * 100:.2f} %)"
        )
    return lines or ["  (no delivery by this IP in the window)"]


def _caps_text(daily: int | None, isp: dict[str, int]) -> str:
    if daily is None:
        return "no warm-up cap"
    per = ", ".join(f"{k} {v}" for k, v in sorted(isp.items()))
    return f"daily {daily}" + (f"; {per}" if per else "")


@warmup.command("status", epilog=EXIT_CODES_HELP)
@_maillog_option(required=False)
@_log_zone
@_now
@repo_option
@json_option
def status(
    maillogs: tuple[Path, ...], log_zone: str, now: datetime | None, repo: Path, as_json: bool
) -> None:
    """Each dedicated IP's schedule, day, today's caps per class, sent, rates per class."""
    loaded = load_valid_repo(repo, as_json=as_json)
    clock = _clock(now)
    records = _deliveries(maillogs, log_zone, clock)
    entries = [ip_warmup(loaded, c, records, clock) for c in warming_customers(loaded)]
    if as_json:
        emit_json(
            {
                "ok": True,
                "records_read": len(records),
                "complaints": "not in the relay's log (the feedback ledgers will add them)",
                "ips": [e.as_dict() for e in entries],
            }
        )
        return
    for e in entries:
        stage = "none" if e.position.stage is None else f"{e.position.stage}/{e.stages}"
        held = " (held)" if e.position.held else ""
        click.echo(
            f"{e.ip} ({e.customer}): {e.schedule}, day {e.position.day}, stage {stage}{held}; "
            f"today: {_caps_text(e.daily_cap, e.isp_caps)}"
        )
        sent = ", ".join(f"{k} {v.sent}" for k, v in sorted(e.sent_today.by_class.items()))
        click.echo(f"  sent today: {sent or 'nothing'}")
        click.echo(f"  {e.window[0]} to {e.window[1]}:")
        for line in _rates_lines(e):
            click.echo(f"  {line}")
        verdict = "may advance" if e.decision.advance else "holds: " + "; ".join(e.decision.reasons)
        click.echo(f"  {verdict}")


def proposal_message(entry: IpWarmup, repo: Repo) -> str:
    """The pull request's title and body: the move and the figures that allow it."""
    assert entry.position.stage is not None
    nxt = entry.position.stage + 1
    stage = repo.warmup[entry.schedule].stages[nxt - 1]
    c = repo.warmup_advance
    return "\n".join(
        [
            f"warmup: {entry.ip} ({entry.customer}) to stage {nxt} of {entry.schedule}",
            "",
            f"Day {entry.position.day} of the warm-up; stage {entry.position.stage} -> {nxt}.",
            f"Receivers' answers to {entry.ip}, {entry.window[0]} to {entry.window[1]} "
            f"(relay logs), all under the ceilings (deferral {c.max_deferral_rate * 100:.1f} %, "
            f"bounce {c.max_bounce_rate * 100:.1f} %, complaint {c.max_complaint_rate * 100:.2f} "
            f"%, at least {c.min_sent} attempted; {entry.rates.total.attempts} were):",
            *_rates_lines(entry),
            f"Caps from stage {nxt}: {_caps_text(stage.daily_cap, dict(stage.isp_caps))}.",
            "",
            "Proposed by `relayops warmup advance`.",
        ]
    )


@warmup.command("advance", epilog=EXIT_CODES_HELP)
@click.argument("ips", nargs=-1, metavar="[IP]...")
@_maillog_option(required=True)
@_log_zone
@click.option("--dry", is_flag=True, help="Show the change and the message; write nothing.")
@click.option(
    "--message-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the pull request's message here (for `git commit -F`).",
)
@_now
@repo_option
@json_option
def advance(
    ips: tuple[str, ...],
    maillogs: tuple[Path, ...],
    log_zone: str,
    dry: bool,
    message_file: Path | None,
    now: datetime | None,
    repo: Path,
    as_json: bool,
) -> None:
    """Move dedicated IPs to their next stage when receivers allow it; else hold and say why.

    Without IP arguments: every IP whose warm-up is in a stage with a next one.
    """
    loaded = load_valid_repo(repo, as_json=as_json)
    clock = _clock(now)
    chosen = set(_selected(loaded, ips))
    records = _deliveries(maillogs, log_zone, clock)
    entries = [ip_warmup(loaded, c, records, clock) for c in warming_customers(loaded)]
    if chosen:
        entries = [e for e in entries if e.ip in chosen]
    else:
        entries = [
            e for e in entries if e.position.stage is not None and e.position.stage < e.stages
        ]
    changes: dict[str, bytes | None] = {}
    messages: list[str] = []
    report: list[dict[str, object]] = []
    for e in entries:
        item: dict[str, object] = {"ip": e.ip, "customer": e.customer, "stage": e.position.stage}
        item["rates"] = {k: v.as_dict() for k, v in sorted(e.rates.by_class.items())}
        if not e.decision.advance:
            item |= {"advance": False, "holds_because": list(e.decision.reasons)}
            report.append(item)
            if not as_json:
                click.echo(f"{e.ip} ({e.customer}) holds at stage {e.position.stage}:")
                for reason in e.decision.reasons:
                    click.echo(f"  - {reason}")
            continue
        assert e.position.stage is not None
        rel = customer_file(e.customer)
        before = (loaded.root / rel).read_text(encoding="utf-8")
        try:
            after = edits.set_warmup_stage(before, rel, stage=e.position.stage + 1)
        except RoundTripError as exc:
            fail(str(exc))
        changes[rel] = after.encode("utf-8")
        message = proposal_message(e, loaded)
        messages.append(message)
        diff = "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                fromfile=f"a/{rel}",
                tofile=f"b/{rel}",
            )
        )
        item |= {"advance": True, "to_stage": e.position.stage + 1, "file": rel, "diff": diff}
        item["message"] = message
        report.append(item)
        if not as_json:
            click.echo(message)
            click.echo("")
            click.echo(diff, nl=False)
    if changes and not dry:
        checked = load_repo(loaded.root, today=clock.date(), overlay=changes)
        if checked.repo is None:
            print_findings(checked.findings)
            fail("the change would leave the repository invalid; nothing written")
        apply(loaded.root, changes)
        if message_file is not None:
            message_file.write_text("\n\n".join(messages) + "\n", encoding="utf-8")
    held = any(not r["advance"] for r in report)
    if as_json:
        emit_json({"ok": not held, "written": bool(changes) and not dry, "ips": report})
    elif not entries:
        click.echo("no dedicated IP in a warm-up stage with a next one")
    if held:
        sys.exit(EXIT_FAILED)
