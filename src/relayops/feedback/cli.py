"""`relayops feedback read FILE... [--json] [--trace-key-file F]`.

Reads each file (at most the parse cap of it), prints the reading; never acts on it.
Exit 0 when every file was read (whatever it contains), 2 when a file or the key file
cannot be read — checked for all files before anything is printed.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from relayops.commands.options import EXIT_CODES_HELP, emit_json, fail, json_option
from relayops.feedback.model import Report
from relayops.feedback.parse import MAX_PARSE_BYTES
from relayops.feedback.reader import read_report


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
    """Read bounces and complaint reports (a pure reader: nothing is suppressed)."""


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
