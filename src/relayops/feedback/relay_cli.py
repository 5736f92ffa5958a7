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
from relayops.feedback.maillog import Failure
from relayops.policyd.cli import read_password_file
from relayops.policyd.ledger import DEFAULT_STORE, Ledger, LedgerError, open_ledger
from relayops.policyd.outbox import queue_notice
from relayops.policyd.rules import Rules, RulesError, load_rules

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


def _tempfail(message: str) -> NoReturn:
    """Postfix pipe semantics: 75 keeps the report queued for a retry."""
    click.echo(f"relayops feedback ingest: {message}", err=True)
    sys.exit(EX_TEMPFAIL)


def open_store(spec: str, password_file: Path | None) -> tuple[Ledger, Notify]:
    """The ledger in the daemon's store and the way to queue notices in its outbox;
    LedgerError or click.BadParameter (the password file)."""
    password = read_password_file(password_file) if password_file else None
    ledger = open_ledger(spec, password=password)
    return ledger, functools.partial(queue_notice, spec, password=password)


def open_store_or(
    fail: Callable[[str], NoReturn], spec: str, password_file: Path | None
) -> tuple[Ledger, Notify]:
    """open_store; what keeps it from opening (the store, the password file) goes to
    `fail` in one line (each command fails its own way: exit 2, or 75 for Postfix)."""
    try:
        return open_store(spec, password_file)
    except LedgerError as exc:
        fail(str(exc))
    except click.BadParameter as exc:
        fail(exc.message)


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
    ledger, notify = open_store_or(_tempfail, store_spec, store_password_file)
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


# Where the follower keeps its runtime state (positions, unreadable lines): not deployed
# files, so drift never compares them (deploy/hostplan.py creates the directory only).
DEFAULT_MAILLOG_STATE = Path("/var/lib/relayops/maillog")
POLL_SECONDS = 1.0
STORE_RETRY_MAX = (
    8.0  # seconds between two tries of a store that does not answer (SIGTERM waits it)
)


@click.command("maillog", epilog=EXIT_CODES_HELP)
@click.argument("logfiles", nargs=-1, required=True)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep reading as Postfix appends, follow rotation and new files matching the "
    "patterns (quote them: '/var/log/postfix*.log'); runs until SIGTERM.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_MAILLOG_STATE,
    show_default=True,
    help="With --follow: the positions read (positions.json) and the lines that could not "
    "be read, kept for review (unparsed.jsonl).",
)
@store_options
@rules_option
@json_option
def maillog(
    logfiles: tuple[str, ...],
    follow: bool,
    state_dir: Path,
    store_spec: str,
    store_password_file: Path | None,
    rules_path: Path,
    as_json: bool,
) -> None:
    """Record the relay's own delivery failures (`status=bounced` lines of Postfix's logs,
    every instance's): hard bounces suppress the recipient for its customer. LOGFILES are
    files or glob patterns. Reading a file twice records nothing twice. Exit 0; 1 when
    the store failed (without --follow; the follower waits for it); 2 when a file cannot
    be read."""
    from relayops.feedback.follow import expand

    try:
        rules = load_rules(rules_path)
    except RulesError as exc:
        _fail(str(exc))
    if not follow:
        for name in logfiles:
            if not expand([name]):
                _fail(f"cannot read {name}: no such file")
    ledger, notify = open_store_or(_fail, store_spec, store_password_file)
    try:
        if follow:
            _follow(logfiles, state_dir, rules, rules_path, ledger, notify)
            return
        recorded, garbage = _read_once(logfiles, rules, ledger, notify, as_json=as_json)
    except LedgerError as exc:
        _fail(str(exc), code=1)
    finally:
        ledger.close()
    if as_json:
        _emit_json({"ok": True, "failures": recorded, "garbage": garbage})


def _row_text(row: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in row.items())


def _read_once(
    logfiles: tuple[str, ...], rules: Rules, ledger: Ledger, notify: Notify, *, as_json: bool
) -> tuple[list[dict[str, Any]], int]:
    from relayops.feedback.follow import LogFollower
    from relayops.feedback.ingest import record_failure
    from relayops.feedback.maillog import is_garbage

    follower = LogFollower(logfiles, {})
    recorded: list[dict[str, Any]] = []
    garbage = 0
    try:
        while batch := follower.poll():
            for current, line in batch:
                if is_garbage(line):
                    garbage += 1
                    continue
                failure = current.tracker.feed(line)
                if failure is None:
                    continue
                now = datetime.now(UTC)
                row = record_failure(failure, rules=rules, ledger=ledger, notify=notify, now=now)
                recorded.append(row)
                if not as_json:
                    click.echo(_row_text(row))
    finally:
        follower.close()
    return recorded, garbage


def _follow(
    patterns: tuple[str, ...],
    state_dir: Path,
    rules: Rules,
    rules_path: Path,
    ledger: Ledger,
    notify: Notify,
) -> None:
    """The service: poll, record, save positions; SIGTERM ends it between two lines."""
    import signal
    import time

    from relayops.feedback.follow import LogFollower, ReviewFile, load_positions, save_positions
    from relayops.feedback.maillog import is_garbage

    logging.basicConfig(stream=sys.stderr, level="INFO", format="%(name)s %(message)s")
    log = logging.getLogger("relayops.feedback.maillog")
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        _fail(f"cannot create {state_dir}: {exc.strerror or exc}")
    positions_file = state_dir / "positions.json"
    review = ReviewFile(state_dir / "unparsed.jsonl")
    follower = LogFollower(patterns, load_positions(positions_file))
    rules_mtime = _mtime(rules_path)
    log.info("event=following patterns=%s state=%s", ",".join(patterns), state_dir)
    try:
        while not stopping:
            if (mtime := _mtime(rules_path)) != rules_mtime:
                rules_mtime = mtime
                try:
                    rules = load_rules(rules_path)
                    log.info("event=rules_reloaded customers=%d", len(rules.customers))
                except RulesError as exc:
                    log.error("event=reload_failed keeping=previous_rules error=%r", str(exc))
            batch = follower.poll()
            for current, line in batch:
                if is_garbage(line):
                    review.keep(str(current.path), line, "not a log line Postfix writes")
                    continue
                try:
                    failure = current.tracker.feed(line)
                except Exception:  # the parser's contract is never to raise; a bug must not stop it
                    log.exception("event=maillog_parser_failed")
                    review.keep(str(current.path), line, "the parser failed")
                    continue
                if failure is None:
                    continue
                row = _record_until_done(failure, rules, ledger, notify, log, stopping)
                if row is None:
                    review.keep(str(current.path), line, "recording failed")
                else:
                    click.echo(_row_text(row), nl=True)
            try:
                save_positions(positions_file, follower.positions)
            except OSError as exc:
                log.error("event=maillog_state_unwritable error=%r", exc.strerror or str(exc))
            if not batch:
                time.sleep(POLL_SECONDS)
    finally:
        follower.close()
        log.info("event=stopping")


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _record_until_done(
    failure: Failure,
    rules: Rules,
    ledger: Ledger,
    notify: Notify,
    log: logging.Logger,
    stopping: list[int],
) -> dict[str, Any] | None:
    """record_failure, retried while the store does not answer (the log keeps the line;
    the position does not move past it). None: a bug, logged; the line is kept."""
    import time

    from relayops.feedback.ingest import record_failure

    wait = POLL_SECONDS
    down = False
    while True:
        try:
            row = record_failure(
                failure, rules=rules, ledger=ledger, notify=notify, now=datetime.now(UTC)
            )
        except LedgerError as exc:
            if not down:
                log.error("event=store_unavailable error=%r", str(exc))
                down = True
            if stopping:
                raise
            time.sleep(wait)
            wait = min(wait * 2, STORE_RETRY_MAX)
            continue
        except Exception:
            log.exception("event=maillog_record_failed")
            return None
        if down:
            log.info("event=store_recovered")
        return row
