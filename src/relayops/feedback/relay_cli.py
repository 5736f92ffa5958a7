"""`relayops feedback ingest|maillog`: the relay's side of the feedback loop.

They run on a relay (the Postfix pipe transport, the log reader) from the relay wheel
(deploy/wheels.py), which carries relayops.policyd, relayops.feedback without cli.py,
and relayops/relay.py: so this module imports nothing of relayops outside those two
packages (import-linter). The operator's `relayops feedback` group (cli.py) adds
these two commands to its own.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from relayops.feedback.ingest import Notify
from relayops.policyd.cli import read_password_file
from relayops.policyd.ledger import DEFAULT_STORE, Ledger, LedgerError, open_ledger
from relayops.policyd.outbox import queue_notice
from relayops.policyd.rules import RulesError, load_rules

EX_TEMPFAIL = 75  # sysexits.h: Postfix's pipe(8) keeps the message and retries
# The relay's paths (hostlayout.py, which this wheel does not carry, names the same).
DEFAULT_RULES = Path("/etc/relayops/policy.json")
DEFAULT_KEY = Path("/etc/relayops/trace.key")
# Under the relayops account's home (deploy/hostplan.py), which the pipe's user can write.
DEFAULT_SPOOL = Path("/var/lib/relayops/feedback")
EXIT_CODES_HELP = (
    "Exit codes: 0 done, 1 the store failed, 2 invalid input; ingest: 75 (EX_TEMPFAIL) "
    "when the store or the configuration cannot be used now (Postfix retries)."
)


def store_options(command: Callable[..., None]) -> Callable[..., None]:
    """--store and --store-password-file, as the policy daemon takes them."""
    command = click.option(
        "--store-password-file",
        type=click.Path(path_type=Path),
        help="The Redis ACL user's password (mode 600), as the daemon reads it.",
    )(command)
    return click.option(
        "--store",
        "store_spec",
        default=DEFAULT_STORE,
        show_default=True,
        help="The policy daemon's store: sqlite:PATH (one host) or a Redis URL (a fleet; "
        "the daemon's forms, docs/policyd.md).",
    )(command)


rules_option = click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_RULES,
    show_default=True,
    help="policy.json (its antispam section: ceilings, consequences, suppression days).",
)


def _tempfail(message: str) -> None:
    """Postfix pipe semantics: 75 keeps the report queued for a retry."""
    click.echo(f"relayops feedback ingest: {message}", err=True)
    sys.exit(EX_TEMPFAIL)


def open_store(spec: str, password_file: Path | None) -> tuple[Ledger, Notify]:
    """The ledger in the daemon's store and the way to queue notices in its outbox;
    LedgerError or click.BadParameter (the password file)."""
    password = read_password_file(password_file) if password_file else None
    ledger = open_ledger(spec, password=password)
    return ledger, functools.partial(queue_notice, spec, password=password)


def _fail(message: str, code: int = 2) -> NoReturn:
    """relayops.commands.options.fail's output and exit codes (not imported: the relay
    wheel carries no operator code)."""
    name = click.get_current_context().command_path.removeprefix("relayops ")
    click.echo(f"relayops {name}: {message}", err=True)
    sys.exit(code)


def _emit_json(data: dict[str, Any]) -> None:
    """commands.options.emit_json's format (`ok` first), for the same reason."""
    ordered = {"ok": data["ok"], **{k: v for k, v in data.items() if k != "ok"}}
    click.echo(json.dumps(ordered, indent=2, default=str))


# commands.options.json_option, the same option (tests/cli/test_cli_convention.py).
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable report; its first key is `ok`."
)


@click.command("ingest", epilog=EXIT_CODES_HELP)
@store_options
@rules_option
@click.option(
    "--trace-key-file",
    type=click.Path(path_type=Path),
    default=DEFAULT_KEY,
    show_default=True,
    help="The service key that verifies X-Relayops-Trace stamps.",
)
@click.option(
    "--spool",
    type=click.Path(path_type=Path),
    default=DEFAULT_SPOOL,
    show_default=True,
    help="Where every message received is kept for review (with its outcome).",
)
@json_option
def ingest_command(
    store_spec: str,
    store_password_file: Path | None,
    rules_path: Path,
    trace_key_file: Path,
    spool: Path,
    as_json: bool,
) -> None:
    """Read one message on stdin (Postfix pipe transport), keep it, record what it reports
    and apply policies/antispam.yaml. Exit 0 whatever the message is (garbage included:
    kept and logged, nothing done); 75 when the store or the config cannot be used now."""
    from relayops.feedback.ingest import Spool, ingest, receive

    logging.basicConfig(stream=sys.stderr, level="INFO", format="%(name)s %(message)s")
    received = receive(sys.stdin.buffer)
    try:  # kept first, whatever follows (ingest writes the same file again, with its outcome)
        Spool(spool).keep(received)
    except OSError as exc:
        _tempfail(f"spool {spool}: {exc.strerror or exc}")
    try:
        policy = load_rules(rules_path).antispam
    except RulesError as exc:
        _tempfail(str(exc))
    try:
        key: bytes | None = trace_key_file.read_bytes().strip() or None
    except OSError as exc:
        _tempfail(f"cannot read the trace key file {trace_key_file}: {exc.strerror or exc}")
    try:
        ledger, notify = open_store(store_spec, store_password_file)
    except LedgerError as exc:
        _tempfail(str(exc))
    except click.BadParameter as exc:
        _tempfail(exc.message)
    try:
        outcome = ingest(
            received,
            ledger=ledger,
            policy=policy,
            spool=Spool(spool),
            notify=notify,
            key=key,
            now=datetime.now(UTC),
        )
    except LedgerError as exc:
        _tempfail(str(exc))
    except OSError as exc:
        _tempfail(f"spool {spool}: {exc.strerror or exc}")
    finally:
        ledger.close()
    if as_json:
        _emit_json(outcome)
    else:
        click.echo(" ".join(f"{k}={v}" for k, v in outcome.items() if k != "ok"), err=True)


@click.command("maillog", epilog=EXIT_CODES_HELP)
@click.argument("logfile", type=click.Path(path_type=Path))
@click.option("--follow", is_flag=True, help="Keep reading lines as Postfix appends them.")
@store_options
@rules_option
@json_option
def maillog(
    logfile: Path,
    follow: bool,
    store_spec: str,
    store_password_file: Path | None,
    rules_path: Path,
    as_json: bool,
) -> None:
    """Record the relay's own delivery failures (`status=bounced` lines of Postfix's log):
    hard bounces suppress the recipient for its customer. Reading a file twice records
    nothing twice. Exit 0; 1 when the store failed; 2 when a file cannot be read."""
    from relayops.feedback.ingest import record_failure
    from relayops.feedback.maillog import Tracker

    try:
        rules = load_rules(rules_path)
    except RulesError as exc:
        _fail(str(exc))
    try:
        handle = logfile.open(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        _fail(f"cannot read {logfile}: {exc.strerror or exc}")
    try:
        ledger, notify = open_store(store_spec, store_password_file)
    except LedgerError as exc:
        _fail(str(exc))
    except click.BadParameter as exc:
        _fail(exc.message)
    tracker = Tracker()
    recorded: list[dict[str, Any]] = []
    try:
        with handle:
            for line in _lines(handle, follow=follow):
                failure = tracker.feed(line)
                if failure is None:
                    continue
                row = record_failure(
                    failure, rules=rules, ledger=ledger, notify=notify, now=datetime.now(UTC)
                )
                recorded.append(row)
                if not as_json:
                    click.echo(" ".join(f"{k}={v}" for k, v in row.items()))
    except LedgerError as exc:
        _fail(str(exc), code=1)
    finally:
        ledger.close()
    if as_json:
        _emit_json({"ok": True, "failures": recorded})


def _lines(handle: Any, *, follow: bool) -> Any:
    """The file's lines; with `follow`, then the lines appended later (polled each second)."""
    import time

    pending = ""
    while True:
        chunk = handle.readline()
        if chunk:
            pending += chunk
            if pending.endswith("\n"):
                yield pending
                pending = ""
            continue
        if not follow:
            if pending:
                yield pending
            return
        time.sleep(1.0)
