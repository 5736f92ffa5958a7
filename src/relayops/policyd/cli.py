"""`relayops policyd`: the policy daemon's command line."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from relayops.policyd.notify import Notifier
from relayops.policyd.rules import RulesError, load_rules
from relayops.policyd.server import Listen, PolicyServer, run, split_host_port
from relayops.policyd.store import Store, StoreError


def _host_port(spec: str, option: str) -> tuple[str, int]:
    host_port = split_host_port(spec)
    if host_port is None:
        raise click.BadParameter(f"expected HOST:PORT, got {spec!r}", param_hint=option)
    return host_port


def make_store(spec: str) -> Store:
    """``sqlite:PATH`` or ``redis://HOST:PORT/N``."""
    if spec.startswith("sqlite:"):
        from relayops.policyd.store_sqlite import SqliteStore

        return SqliteStore(Path(spec[len("sqlite:") :]))
    if spec.startswith("redis://"):  # the only scheme resp.Address accepts
        from relayops.policyd.store_redis import RedisStore

        return RedisStore(spec)
    raise click.BadParameter(
        f"expected sqlite:PATH or redis://HOST:PORT/N, got {spec!r}", param_hint="--store"
    )


@click.command()
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
    help="sqlite:PATH (one host) or redis://HOST:PORT/N (a fleet)",
)
@click.option(
    "--milter",
    "milter_spec",
    help="unix:PATH or HOST:PORT: also serve the message checks (From:, campaigns) "
    "as a Postfix milter (docs/milter.md)",
)
@click.option("--notify-smtp", help="HOST:PORT of the MTA that sends warning/limit mails")
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
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def policyd(
    rules_path: Path,
    listen: str,
    store_spec: str,
    milter_spec: str | None,
    notify_smtp: str | None,
    metrics_spec: str | None,
    on_store_error: str,
    socket_mode: str,
    log_level: str,
) -> None:
    """Run the Postfix policy daemon: quotas, account status, sender domains, sizes."""
    logging.basicConfig(
        stream=sys.stderr,
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
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
    try:
        store = make_store(store_spec)
    except StoreError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    try:
        rules = load_rules(rules_path)
    except RulesError as exc:
        click.echo(f"relayops policyd: {exc}", err=True)
        sys.exit(2)

    async def main() -> None:
        server = PolicyServer(
            rules=rules,
            rules_path=rules_path,
            store=store,
            notifier=Notifier(smtp),
            fail_open=on_store_error == "dunno",
        )
        await run(server, where, socket_mode=mode, metrics=metrics, milter=milter)

    try:
        asyncio.run(main())
    except StoreError as exc:
        click.echo(f"relayops policyd: store {store_spec}: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        where_text = listen if milter_spec is None else f"{listen} / {milter_spec}"
        click.echo(f"relayops policyd: cannot listen on {where_text}: {exc.strerror}", err=True)
        sys.exit(1)
