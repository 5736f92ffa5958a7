"""`relayops policyd`: the policy daemon's command line."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from relayops.policyd import logsink
from relayops.policyd.feedback_metrics import FeedbackFigures
from relayops.policyd.notify import Notifier
from relayops.policyd.rules import RulesError, load_rules
from relayops.policyd.server import Listen, PolicyServer, run, split_host_port
from relayops.policyd.store import Store, StoreError
from relayops.policyd.suppress import Suppressions, source_for


def _host_port(spec: str, option: str) -> tuple[str, int]:
    host_port = split_host_port(spec)
    if host_port is None:
        raise click.BadParameter(f"expected HOST:PORT, got {spec!r}", param_hint=option)
    return host_port


STORE_FORMS = (
    "sqlite:PATH, redis[s]://[USER@]HOST:PORT/N or redis[s]+sentinel://[USER@]S1,S2,S3/MASTER/N"
)


def read_password_file(path: Path) -> str:
    """The store password: the file's first line, the file readable by its owner only.

    A password on the command line is visible to every local user (ps,
    /proc/PID/cmdline); a mode-600 file is not.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--store-password-file"
        ) from None
    if mode & 0o077:
        raise click.BadParameter(
            f"{path} is mode {mode & 0o777:04o}: others may read it; chmod 600 it",
            param_hint="--store-password-file",
        )
    password = text.split("\n", 1)[0].rstrip("\r")
    if not password:
        raise click.BadParameter(f"{path} is empty", param_hint="--store-password-file")
    return password


def _trace_key(path: Path | None) -> bytes | None:
    """The stamp key; a missing or empty file is logged, and mail goes out unstamped
    (complaints about it then cannot be attributed) rather than refused."""
    if path is None:
        return None
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        logging.getLogger("relayops.policyd").error(
            "event=trace_key_unreadable path=%s error=%r stamping=off", path, exc.strerror
        )
        return None
    if not key:
        logging.getLogger("relayops.policyd").error(
            "event=trace_key_empty path=%s stamping=off", path
        )
    return key or None


def make_store(spec: str, *, password: str | None = None) -> Store:
    """``sqlite:PATH`` or a Redis URL (policyd/redis_url.py); `password` overrides the URL's."""
    if spec.startswith("sqlite:"):
        if password is not None:
            raise click.BadParameter(
                "a password is for a Redis store, not sqlite:", param_hint="--store-password-file"
            )
        from relayops.policyd.store_sqlite import SqliteStore

        return SqliteStore(Path(spec[len("sqlite:") :]))
    if spec.startswith(("redis://", "rediss://", "redis+sentinel://", "rediss+sentinel://")):
        from relayops.policyd.redis_url import RedisUrl
        from relayops.policyd.store_redis import RedisStore

        try:
            url = RedisUrl.parse(spec)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        if url.username and url.password is None and password is None:
            raise StoreError(
                f"{url.redacted()} names the ACL user {url.username} but no password: "
                "give it with --store-password-file"
            )
        if url.password is not None and password is None:
            logging.getLogger("relayops.policyd").warning(
                "event=store_password_on_command_line store=%s: every local user can read it; "
                "use --store-password-file",
                url.redacted(),
            )
        return RedisStore(url if password is None else url.with_password(password))
    raise click.BadParameter(
        f"expected {STORE_FORMS}; got {spec.split('@')[-1]!r}", param_hint="--store"
    )


# Not relayops.commands.options: the daemon imports nothing outside relayops.policyd.
EXIT_CODES_HELP = (
    "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 the store or socket failed, "
    "2 invalid options or policy.json."
)


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--rules",
    "rules_path",
    required=True,
    type=click.Path(path_type=Path),
    help="policy.json written by `relayops render` (reloaded on SIGHUP).",
)
@click.option("--listen", required=True, help="unix:PATH or HOST:PORT")
@click.option(
    "--store",
    "store_spec",
    default="sqlite:/var/lib/relayops/policyd.sqlite",
    show_default=True,
    help="sqlite:PATH (one host) or a Redis URL (a fleet): redis[s]://[USER@]HOST:PORT/N, "
    "redis[s]+sentinel://[USER@]S1:PORT,S2:PORT/MASTER/N; options ?ca=PEM&wait=N (docs/policyd.md)",
)
@click.option(
    "--store-password-file",
    type=click.Path(path_type=Path),
    help="file (mode 600) whose first line is the Redis password, kept off the command line",
)
@click.option(
    "--milter",
    "milter_spec",
    help="unix:PATH or HOST:PORT: also serve the message checks (From:, campaigns) "
    "as a Postfix milter (docs/milter.md)",
)
@click.option("--notify-smtp", help="HOST:PORT of the MTA that sends the notice mails")
@click.option("--metrics", "metrics_spec", help="HOST:PORT to serve Prometheus metrics on")
@click.option(
    "--on-store-error",
    type=click.Choice(["defer", "dunno"]),
    default="defer",
    show_default=True,
    help="defer: tempfail while counters cannot be kept (nothing over-sent); "
    "dunno: let mail through uncounted",
)
@click.option(
    "--socket-mode",
    default="0660",
    show_default=True,
    help="permissions of the unix socket (octal)",
)
@click.option(
    "--trace-key-file",
    type=click.Path(path_type=Path),
    help="The service key that signs the X-Relayops-Trace stamp (docs/feedback.md); "
    "without it (or if it is missing) messages get no stamp.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def policyd(
    rules_path: Path,
    listen: str,
    store_spec: str,
    store_password_file: Path | None,
    milter_spec: str | None,
    notify_smtp: str | None,
    metrics_spec: str | None,
    on_store_error: str,
    socket_mode: str,
    trace_key_file: Path | None,
    log_level: str,
) -> None:
    """Run the Postfix policy daemon: quotas, account status, sender domains, sizes."""
    logsink.configure(log_level)
    # The format uses none of these; without them a record costs about 4 µs less
    # (no caller frame walk, thread or process lookups: the logging HOWTO's
    # "Optimization"), which counts at one refusal line per 452 under a burst.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    try:
        where = Listen.parse(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    try:
        milter = Listen.parse(milter_spec) if milter_spec else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--milter") from None
    try:
        mode = int(socket_mode, 8)
    except ValueError:
        raise click.BadParameter(
            "expected an octal mode such as 0660", param_hint="--socket-mode"
        ) from None
    smtp = _host_port(notify_smtp, "--notify-smtp") if notify_smtp else None
    metrics = _host_port(metrics_spec, "--metrics") if metrics_spec else None
    password = read_password_file(store_password_file) if store_password_file else None
    try:
        store = make_store(store_spec, password=password)
    except StoreError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    try:
        rules = load_rules(rules_path)
    except RulesError as exc:
        click.echo(f"relayops policyd: {exc}", err=True)
        sys.exit(2)

    trace_key = _trace_key(trace_key_file)
    source = source_for(store_spec, password=password)
    suppressions = Suppressions(source) if source is not None else None

    async def main() -> None:
        server = PolicyServer(
            rules=rules,
            rules_path=rules_path,
            store=store,
            notifier=Notifier(smtp),
            fail_open=on_store_error == "dunno",
            suppressions=suppressions,
            feedback=FeedbackFigures(store_spec, password=password) if source is not None else None,
            trace_key=trace_key,
        )
        listening = None
        if metrics is not None:
            from relayops.policyd.metrics import serve_metrics

            host, port = metrics

            def listening() -> None:
                serve_metrics(server, host, port)

        logsink.attach(asyncio.get_running_loop())
        try:
            await run(server, where, socket_mode=mode, listening=listening, milter=milter)
        finally:
            logsink.attach(None)

    try:
        asyncio.run(main())
    except StoreError as exc:
        click.echo(f"relayops policyd: store {store.description}: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        where_text = listen if milter_spec is None else f"{listen} / {milter_spec}"
        click.echo(f"relayops policyd: cannot listen on {where_text}: {exc.strerror}", err=True)
        sys.exit(1)
