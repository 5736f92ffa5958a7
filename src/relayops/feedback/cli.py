"""`relayops feedback read|ingest|maillog|status|release|unsuppress|propose`.

`read` prints readings and never acts. `ingest` and `maillog` run on a relay (Postfix
pipe / log reader) and act through the ledger as policies/antispam.yaml says;
`status`, `release`, `unsuppress` are the operator's view and hands (docs/feedback.md).
`read`: exit 0 when every file was read (whatever it contains), 2 when a file or the
key file cannot be read — checked for all files before anything is printed.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from relayops.backoff.names import DEFAULT_PAUSES
from relayops.backoff.pauses import Pause, PauseBook
from relayops.commands.options import EXIT_CODES_HELP, emit_json, fail, json_option, repo_option
from relayops.feedback.ingest import Notify
from relayops.feedback.model import Report
from relayops.feedback.parse import MAX_PARSE_BYTES
from relayops.feedback.reader import read_report
from relayops.feedback.relay_cli import (
    ingest_command,
    maillog,
    open_store_or,
    rules_option,
    store_options,
)
from relayops.policyd.ledger import Ledger, LedgerError, Tally
from relayops.policyd.notices import NoticeRequest
from relayops.policyd.rules import AntiSpamRules, RulesError, load_rules


def _read_head(path: Path) -> bytes:
    """The file's first MAX_PARSE_BYTES + 1 bytes (the +1 tells the reader it was cut):
    a 50 MB bounce costs no more memory than a 2 MB one."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_PARSE_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def _read_key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        fail(f"cannot read the trace key file {path}: {exc.strerror or exc}")
    if not key:
        fail(f"the trace key file {path} is empty")
    return key


def _table(readings: list[tuple[Path, Report]]) -> Table:
    table = Table(title=f"{len(readings)} report(s)", title_justify="left")
    for column in ("file", "kind", "address", "status", "reason", "hard", "whose"):
        table.add_column(column, overflow="fold", no_wrap=column in ("status", "reason", "hard"))
    for path, report in readings:
        origin = report.origin
        whose = ""
        if origin.customer:
            mark = "verified" if origin.trace_verified else "UNVERIFIED"
            whose = f"{origin.customer}/{origin.login} ({mark})"
        elif origin.dkim_domains:
            whose = "d=" + ",".join(origin.dkim_domains)
        kind = report.kind.value + (f" ({report.feedback_type})" if report.feedback_type else "")
        rows = report.recipients or ()
        if not rows:
            table.add_row(path.name, kind, "", "", "", "", whose)
        for recipient in rows:
            table.add_row(
                path.name,
                kind,
                recipient.address,
                recipient.status or recipient.smtp_code or "",
                recipient.reason.value,
                "yes" if recipient.hard else "no",
                whose,
            )
    return table


@click.group(epilog=EXIT_CODES_HELP)
def feedback() -> None:
    """Bounces and complaint reports: read them, ingest them, and act as
    policies/antispam.yaml says (status, release, unsuppress, propose)."""


@feedback.command("read", epilog=EXIT_CODES_HELP)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--trace-key-file",
    type=click.Path(path_type=Path),
    help="The service key that verifies X-Relayops-Trace stamps (without it: unverified).",
)
@json_option
def read(files: tuple[Path, ...], trace_key_file: Path | None, as_json: bool) -> None:
    """Say what each FILE (one message, as received) reports: kind, ARF feedback type,
    per recipient the status, reply, reason and whether the address is dead, and
    whose message it was."""
    key = _read_key(trace_key_file)
    contents = [(path, _read_head(path)) for path in files]
    readings = [(path, read_report(data, trace_key=key)) for path, data in contents]
    if as_json:
        emit_json({"ok": True, "reports": [{"file": str(p), **r.to_json()} for p, r in readings]})
        return
    Console().print(_table(readings))


# The relay side (`ingest`, `maillog`) lives in relay_cli.py, which the relay wheel carries.
feedback.add_command(ingest_command)
feedback.add_command(maillog)


# ---- the operator's side ------------------------------------------------------------------


def _ledger(spec: str, password_file: Path | None) -> tuple[Ledger, Notify]:
    return open_store_or(fail, spec, password_file)


def _who() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def customer_status(
    ledger: Ledger, cid: str, policy: AntiSpamRules, *, now: datetime
) -> dict[str, Any]:
    """One customer's figures over the window against the ceilings (the `status` row)."""
    t: Tally = ledger.tally(cid, days=policy.window_days, today=now.astimezone(UTC).date())
    ceiling = policy.complaints / policy.per_messages
    complaint_rate = t.complaint / t.accepted if t.accepted else 0.0
    bounce_rate = t.hard / t.accepted if t.accepted else 0.0
    counted = t.accepted >= policy.min_volume
    flags = ledger.flags()
    return {
        "customer": cid,
        "window_days": policy.window_days,
        "accepted": t.accepted,
        "complaints": t.complaint,
        "hard_bounces": t.hard,
        "soft_bounces": t.soft,
        "blocks": t.block,
        "complaint_rate": round(complaint_rate, 6),
        "complaint_ceiling": round(ceiling, 6),
        "complaint_breach": counted
        and t.complaint * policy.per_messages > policy.complaints * t.accepted,
        "bounce_rate": round(bounce_rate, 6),
        "bounce_ceiling": policy.bounce_rate_max,
        "bounce_breach": counted and t.hard > policy.bounce_rate_max * t.accepted,
        "rates_counted": counted,
        "suppressed": len(ledger.suppressions(cid, now=now.timestamp())),
        "disabled": flags.get(cid),
        "audit": [
            {"at": _day(e.at), "action": e.action, "who": e.who, "why": e.why}
            for e in ledger.audit(cid, limit=10)
        ],
    }


def pauses_in_force(path: Path, *, now: float) -> list[Pause]:
    """The relay's back-off pauses (relayops backoff watch); none if it has no pauses file."""
    if not path.exists():
        return []
    try:
        book = PauseBook(path)
    except sqlite3.Error as exc:
        fail(f"{path}: {exc}", code=1)
    try:
        return book.active(now=now)
    except sqlite3.Error as exc:
        fail(f"{path}: {exc}", code=1)
    finally:
        book.close()


@feedback.command("status", epilog=EXIT_CODES_HELP)
@store_options
@rules_option
@click.option("--customer", "cid", help="Only this customer.")
@click.option(
    "--pauses",
    "pauses_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PAUSES,
    show_default=True,
    help="The relay's back-off pauses (sending IP × ISP class), listed after the customers.",
)
@json_option
def status(
    store_spec: str,
    store_password_file: Path | None,
    rules_path: Path,
    cid: str | None,
    pauses_path: Path,
    as_json: bool,
) -> None:
    """Per customer: accepted recipients, complaints, bounces and blocks over the window,
    the rates against policies/antispam.yaml's ceilings, suppressions, flags, audit; then
    the sending IP × ISP class pauses receivers asked for (automatic back-off)."""
    try:
        policy = load_rules(rules_path).antispam
    except RulesError as exc:
        fail(str(exc))
    ledger, _ = _ledger(store_spec, store_password_file)
    try:
        ids = [cid] if cid else ledger.customers()
        rows = [customer_status(ledger, c, policy, now=datetime.now(UTC)) for c in ids]
    except LedgerError as exc:
        fail(str(exc), code=1)
    finally:
        ledger.close()
    pauses = pauses_in_force(pauses_path, now=time.time())
    if as_json:
        emit_json({"ok": True, "customers": rows, "pauses": [p.as_dict() for p in pauses]})
        return
    table = Table(title=f"feedback over {policy.window_days} day(s)", title_justify="left")
    for col in ("customer", "accepted", "complaints", "hard", "soft", "blocks", "rates",
                "suppressed", "flags"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for r in rows:
        rates = (
            f"complaints {r['complaint_rate']:.4%} (max {r['complaint_ceiling']:.4%})"
            + (" BREACH" if r["complaint_breach"] else "")
            + f"; bounces {r['bounce_rate']:.2%} (max {r['bounce_ceiling']:.2%})"
            + (" BREACH" if r["bounce_breach"] else "")
            + ("" if r["rates_counted"] else f"; below min_volume {policy.min_volume}")
        )
        table.add_row(
            r["customer"],
            str(r["accepted"]),
            str(r["complaints"]),
            str(r["hard_bounces"]),
            str(r["soft_bounces"]),
            str(r["blocks"]),
            rates,
            str(r["suppressed"]),
            f"disabled: {r['disabled']}" if r["disabled"] else "",
        )
    console = Console()
    console.print(table)
    for r in rows:
        for e in r["audit"]:
            console.print(f"{r['customer']}: {e['at']} {e['action']} by {e['who']}: {e['why']}")
    if not pauses:
        console.print("back-off: no sending IP × ISP class paused", markup=False)
    for p in pauses:
        until = datetime.fromtimestamp(p.until, UTC).strftime("%Y-%m-%d %H:%M:%S")
        console.print(
            f"back-off: {p.ip} × {p.isp_class} paused until {until} UTC ({p.kind}): {p.reply}",
            markup=False,
        )


@feedback.command("release", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="CUSTOMER")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@store_options
@json_option
def release(
    cid: str, reason: str, store_spec: str, store_password_file: Path | None, as_json: bool
) -> None:
    """Re-enable a customer disabled pending complaint review (recorded: who, when, why)."""
    ledger, notify = _ledger(store_spec, store_password_file)
    try:
        done = ledger.release(cid, who=_who(), why=reason, now=datetime.now(UTC).timestamp())
    except LedgerError as exc:
        fail(str(exc), code=1)
    finally:
        ledger.close()
    if not done:
        fail(f"customer {cid!r} is not disabled pending complaint review", code=1)
    try:  # the customer hears it through the daemon's outbox (policyd/outbox.py)
        notify(NoticeRequest("reenabled", cid, {}))
    except Exception as exc:  # released all the same; the notice is what is missing
        click.echo(f"relayops feedback release: reenabled notice not queued: {exc}", err=True)
    if as_json:
        emit_json({"ok": True, "customer": cid, "released": True})
    else:
        click.echo(f"{cid}: released ({reason})")


@feedback.command("unsuppress", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="CUSTOMER")
@click.argument("address")
@click.option("--reason", default="lifted by the operator", show_default=True)
@store_options
@json_option
def unsuppress(
    cid: str,
    address: str,
    reason: str,
    store_spec: str,
    store_password_file: Path | None,
    as_json: bool,
) -> None:
    """Let CUSTOMER send to ADDRESS again before its suppression expires."""
    ledger, _ = _ledger(store_spec, store_password_file)
    try:
        done = ledger.unsuppress(
            cid, address, who=_who(), why=reason, now=datetime.now(UTC).timestamp()
        )
    except LedgerError as exc:
        fail(str(exc), code=1)
    finally:
        ledger.close()
    if not done:
        fail(f"{address} is not suppressed for {cid!r}", code=1)
    if as_json:
        emit_json({"ok": True, "customer": cid, "address": address.lower(), "unsuppressed": True})
    else:
        click.echo(f"{cid}: {address.lower()} unsuppressed")


@feedback.command("propose", epilog=EXIT_CODES_HELP)
@repo_option
@store_options
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write <id>-suspend.patch files [default: REPO/proposals].",
)
@json_option
def propose(
    repo: Path, store_spec: str, store_password_file: Path | None, out: Path | None, as_json: bool
) -> None:
    """Turn complaint-rate breaches the ingester recorded into proposed suspensions:
    one patch of customers/<id>.yaml per customer still active (review, then git apply)."""
    # The operator's side only (it reads the repository): imported here so the relay's
    # commands above never need the compiler.
    from relayops.commands.feedback_propose import proposals

    ledger, _ = _ledger(store_spec, store_password_file)
    try:
        found, skipped = proposals(repo, ledger, today=datetime.now(UTC).date())
    except LedgerError as exc:
        fail(str(exc), code=1)
    finally:
        ledger.close()
    target = out or repo / "proposals"
    written = []
    for p in found:
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{p.customer}-suspend.patch"
        path.write_text(p.patch, encoding="utf-8")
        written.append({"customer": p.customer, "reason": p.reason, "patch": str(path)})
    if as_json:
        emit_json({"ok": True, "proposed": written, "skipped": skipped})
        return
    for w in written:
        click.echo(f"{w['customer']}: {w['patch']} ({w['reason']})")
    for line in skipped:
        click.echo(f"skipped {line}")


@feedback.command("keygen", epilog=EXIT_CODES_HELP)
@repo_option
@click.option("--force", is_flag=True, help="Replace an existing key (old stamps stop verifying).")
@json_option
def keygen(repo: Path, force: bool, as_json: bool) -> None:
    """Make the service key that signs X-Relayops-Trace stamps: secrets/trace.key.age,
    encrypted to secrets/recipients.txt; deploy puts it at /etc/relayops/trace.key."""
    from relayops.compile.dkim import DkimKeyError, generate_trace_key
    from relayops.model.secrets import TRACE_KEY_SOURCE

    try:
        path = generate_trace_key(repo, TRACE_KEY_SOURCE, overwrite=force)
    except DkimKeyError as exc:
        fail(str(exc), code=1)
    if as_json:
        emit_json({"ok": True, "written": str(path)})
    else:
        click.echo(f"wrote {path}")
