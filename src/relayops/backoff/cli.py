"""`relayops backoff watch|serve|status`: receivers' "slow down" pauses, at run time.

On a relay: `watch` follows the output instances' delivery logs and pauses an IP × ISP
class when a receiver asks to slow down; `serve` answers the instances' transport
lookups from the pauses (backoff/socketmap.py); `status` lists the pauses in force.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from relayops.backoff.pauses import PauseBook
from relayops.backoff.socketmap import Answerer, serve
from relayops.backoff.watch import pauses_from
from relayops.commands.options import EXIT_CODES_HELP, emit_json, fail, json_option
from relayops.warmup.deliveries import parse_line

DEFAULT_PAUSES = Path("/var/lib/relayops/pauses.sqlite")

_pauses = click.option(
    "--pauses",
    "pauses_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PAUSES,
    show_default=True,
    help="The pauses' SQLite file (runtime state).",
)


@click.group(epilog=EXIT_CODES_HELP)
def backoff() -> None:
    """Pause a sending IP × ISP class when receivers ask to slow down; lifted by itself."""


def _follow(handle: TextIO, *, follow: bool, poll: float = 0.5) -> Iterator[str]:
    while True:
        line = handle.readline()
        if line:
            yield line
        elif not follow:
            return
        else:
            time.sleep(poll)


@backoff.command("watch", epilog=EXIT_CODES_HELP)
@click.option(
    "--maillog",
    "maillog",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An output instance's delivery log (/var/log/postfix-ip-NAME.log).",
)
@click.option("--follow", is_flag=True, help="Keep reading lines as Postfix appends them.")
@click.option(
    "--pause-seconds",
    type=click.IntRange(1, 86400),
    default=900,
    show_default=True,
    help="How long a slow-down reply pauses the IP × class.",
)
@click.option("--log-zone", default="UTC", show_default=True, help="Zone of the log's times.")
@_pauses
def watch(
    maillog: Path, follow: bool, pause_seconds: int, log_zone: str, pauses_path: Path
) -> None:
    """Pause IP × class on each slow-down deferral the log shows (from its end with --follow)."""
    try:
        zone = ZoneInfo(log_zone)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"--log-zone: unknown IANA time zone {log_zone!r}")
    book = PauseBook(pauses_path)
    try:
        with maillog.open(encoding="utf-8", errors="surrogateescape") as handle:
            if follow:
                handle.seek(0, 2)  # only what happens from now on
            click.echo(f"event=watching maillog={maillog}", err=True)
            for line in _follow(handle, follow=follow):
                delivery = parse_line(line, zone=zone, now=datetime.now(UTC))
                if delivery is None:
                    continue
                for pause in pauses_from([delivery], pause_seconds=pause_seconds):
                    try:
                        new = book.pause(pause)
                    except sqlite3.Error as exc:  # the next slow-down line tries again
                        click.echo(f"event=pause_failed error={exc!r}", err=True)
                        continue
                    if new:
                        until = datetime.fromtimestamp(pause.until, UTC)
                        click.echo(
                            f"event=pause ip={pause.ip} class={pause.isp_class} "
                            f"kind={pause.kind} until={until:%Y-%m-%dT%H:%M:%SZ}",
                            err=True,
                        )
    except OSError as exc:
        fail(f"{maillog}: cannot read: {exc.strerror}")
    finally:
        book.close()


@backoff.command("serve", epilog=EXIT_CODES_HELP)
@click.option("--listen", default="127.0.0.1:10190", show_default=True, help="HOST:PORT.")
@click.option(
    "--etc",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc"),
    show_default=True,
    help="Where the output instances' configuration directories are.",
)
@_pauses
def serve_command(listen: str, etc: Path, pauses_path: Path) -> None:
    """Answer the output instances' transport lookups (Postfix socketmap) from the pauses."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        fail(f"--listen {listen!r}: expected HOST:PORT")
    book = PauseBook(pauses_path)

    async def main() -> None:
        server = await serve(Answerer(book, etc), host, int(port))
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        book.close()


@backoff.command("status", epilog=EXIT_CODES_HELP)
@_pauses
@json_option
def status(pauses_path: Path, as_json: bool) -> None:
    """The pauses in force: IP, class, since, until, and the receiver's words."""
    if not pauses_path.exists():
        active = []
    else:
        book = PauseBook(pauses_path)
        try:
            active = book.active(now=time.time())
        finally:
            book.close()
    if as_json:
        emit_json({"ok": True, "pauses": [p.as_dict() for p in active]})
        return
    if not active:
        click.echo("no pause in force")
    for p in active:
        until = datetime.fromtimestamp(p.until, UTC)
        click.echo(f"{p.ip} × {p.isp_class}: paused until {until:%Y-%m-%d %H:%M:%S} UTC ({p.kind})")
        click.echo(f"  {p.reply}")
