"""`relayops backoff watch|serve|status`: receivers' "slow down" pauses, at run time.

On a relay: `watch` follows the output instances' delivery logs and pauses an IP × ISP
class when a receiver asks to slow down; `serve` answers the instances' transport
lookups from the pauses (backoff/socketmap.py); `status` lists the pauses in force.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from relayops.backoff.config import BackoffConfig, BackoffConfigError, load_config
from relayops.backoff.deliveries import parse_line
from relayops.backoff.follow import Follower
from relayops.backoff.metrics import BackoffCollector, serve_metrics
from relayops.backoff.names import DEFAULT_PAUSES, SOCKETMAP_ADDRESS, SOCKETMAP_PORT
from relayops.backoff.pauses import PauseBook
from relayops.backoff.release import release
from relayops.backoff.socketmap import Answerer, serve
from relayops.backoff.watch import pauses_from
from relayops.commands.options import EXIT_CODES_HELP, emit_json, fail, json_option

DEFAULT_PAUSE_SECONDS = 900  # model.policies.PAUSE_DEFAULT_SECONDS, for a class not configured
RELEASE_EVERY = 1.0  # seconds between looks for pauses that ended
# Postfix's resolver client (global/resolve_clnt.c) caches its last lookup for 30 s: a
# message looked up during the pause may be given the paused answer again right after its
# end. A second release this long after the end sends what the first one could not.
RESOLVER_CACHE_SECONDS = 31
FORGET_AFTER = 86_400  # ended pauses are kept this long (status history), then deleted

_pauses = click.option(
    "--pauses",
    "pauses_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PAUSES,
    show_default=True,
    help="The pauses' SQLite file (runtime state).",
)
_etc = click.option(
    "--etc",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc"),
    show_default=True,
    help="Where the output instances' configuration directories are.",
)


@click.group(epilog=EXIT_CODES_HELP)
def backoff() -> None:
    """Pause a sending IP × ISP class when receivers ask to slow down; lifted by itself."""


def _host_port(spec: str, option: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"{option} {spec!r}: expected HOST:PORT")
    return host, int(port)


def _log(event: str, **fields: object) -> None:
    click.echo(" ".join([f"event={event}", *(f"{k}={v}" for k, v in fields.items())]), err=True)


class _Watch:
    """The watcher's state: configuration (reloaded on SIGHUP), logs, book, releases."""

    def __init__(
        self,
        *,
        book: PauseBook,
        config_path: Path | None,
        maillogs: tuple[Path, ...],
        pause_seconds: int,
        zone: tzinfo,
        etc: Path,
        follow: bool,
    ) -> None:
        self.book, self.config_path, self.maillogs = book, config_path, maillogs
        self.pause_seconds, self.zone, self.etc = pause_seconds, zone, etc
        self.config = self._load() if config_path else BackoffConfig()
        self.follower = Follower(self._paths(), from_end=follow)
        self.reload_wanted = False
        self.checked = time.time()

    def _load(self) -> BackoffConfig:
        assert self.config_path is not None
        return load_config(self.config_path)

    def _paths(self) -> list[Path]:
        return [*self.maillogs, *(Path(p) for p in self.config.maillogs)]

    def reload(self) -> None:
        self.reload_wanted = False
        try:
            self.config = self._load()
        except BackoffConfigError as exc:  # keep the configuration in force
            _log("reload_failed", error=repr(str(exc)))
            return
        self.follower.set_paths(self._paths())
        _log("reloaded", maillogs=len(self.follower.paths))

    def line(self, line: str) -> None:
        delivery = parse_line(line, zone=self.zone, now=datetime.now(UTC), pools=True)
        if delivery is None:
            return
        found = pauses_from(
            [delivery], pause_seconds=self.pause_seconds, per_class=self.config.pause_seconds
        )
        for pause in found:
            try:
                new = self.book.pause(pause)
            except sqlite3.Error as exc:  # the next slow-down line tries again
                _log("pause_failed", error=repr(exc))
                continue
            if new:
                until = datetime.fromtimestamp(pause.until, UTC)
                _log("pause", ip=pause.ip, **{"class": pause.isp_class}, kind=pause.kind,
                     until=f"{until:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip

    def release_ended(self) -> None:
        """Schedule at once the mail of the pauses that ended since the last look."""
        now = time.time()
        late = RESOLVER_CACHE_SECONDS
        try:
            ended = self.book.ended_between(self.checked, now)
            ended += self.book.ended_between(self.checked - late, now - late)
            self.book.forget_ended(now=now - FORGET_AFTER)
        except sqlite3.Error as exc:
            _log("release_failed", error=repr(exc))
            return
        self.checked = now
        for p in ended:
            try:
                n = release(p.ip, p.isp_class, etc=self.etc)
            except (OSError, subprocess.SubprocessError) as exc:  # next retry sends it
                _log("release_failed", ip=p.ip, **{"class": p.isp_class}, error=repr(exc))
                continue
            _log("resume", ip=p.ip, **{"class": p.isp_class}, scheduled=n)


@backoff.command("watch", epilog=EXIT_CODES_HELP)
@click.option(
    "--maillog",
    "maillogs",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An output instance's delivery log (/var/log/postfix-ip-NAME.log); repeatable.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The compiled /etc/relayops/backoff.json: pause time per ISP class and the logs "
    "to follow; reread on SIGHUP.",
)
@click.option("--follow", is_flag=True, help="Keep reading lines as Postfix appends them.")
@click.option(
    "--pause-seconds",
    type=click.IntRange(1, 86400),
    default=DEFAULT_PAUSE_SECONDS,
    show_default=True,
    help="How long a slow-down reply pauses the IP × class, for a class --config does not name.",
)
@click.option("--log-zone", default="UTC", show_default=True, help="Zone of the log's times.")
@_etc
@_pauses
def watch(
    maillogs: tuple[Path, ...],
    config_path: Path | None,
    follow: bool,
    pause_seconds: int,
    log_zone: str,
    etc: Path,
    pauses_path: Path,
) -> None:
    """Pause IP × class on each slow-down deferral the logs show (from their end with
    --follow, then also scheduling the held mail at once when a pause ends)."""
    if not maillogs and config_path is None:
        fail("give --maillog FILE or --config FILE")
    try:
        zone = ZoneInfo(log_zone)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"--log-zone: unknown IANA time zone {log_zone!r}")
    book = PauseBook(pauses_path)
    try:
        state = _Watch(book=book, config_path=config_path, maillogs=maillogs,
                       pause_seconds=pause_seconds, zone=zone, etc=etc, follow=follow)  # fmt: skip
    except BackoffConfigError as exc:
        book.close()
        fail(str(exc))

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        state.reload_wanted = True

    signal.signal(signal.SIGHUP, on_hup)
    _log("watching", maillogs=len(state.follower.paths))
    last_release = time.monotonic()
    try:
        while True:
            for line in state.follower.poll():
                state.line(line)
            if not follow:
                return
            if state.reload_wanted:
                state.reload()
            if time.monotonic() - last_release >= RELEASE_EVERY:
                state.release_ended()
                last_release = time.monotonic()
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    finally:
        state.follower.close()
        book.close()


@backoff.command("serve", epilog=EXIT_CODES_HELP)
@click.option(
    "--listen",
    default=f"{SOCKETMAP_ADDRESS}:{SOCKETMAP_PORT}",
    show_default=True,
    help="HOST:PORT of the socketmap the output instances ask.",
)
@click.option("--metrics", "metrics_spec", help="HOST:PORT to serve Prometheus metrics on.")
@_etc
@_pauses
def serve_command(listen: str, metrics_spec: str | None, etc: Path, pauses_path: Path) -> None:
    """Answer the output instances' transport lookups (Postfix socketmap) from the pauses."""
    host, port = _host_port(listen, "--listen")
    metrics = _host_port(metrics_spec, "--metrics") if metrics_spec else None
    book = PauseBook(pauses_path)
    answerer = Answerer(book, etc)
    scrape_book = PauseBook(pauses_path) if metrics else None

    async def main() -> None:
        server = await serve(answerer, host, port)
        if metrics is not None and scrape_book is not None:
            try:
                serve_metrics(BackoffCollector(scrape_book, answerer.answers), *metrics)
            except OSError as exc:
                fail(f"--metrics {metrics_spec}: {exc.strerror or exc}", code=1)
        _log("listening", listen=listen, metrics=metrics_spec or "-")
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"--listen {listen}: {exc.strerror or exc}", code=1)
    finally:
        book.close()
        if scrape_book is not None:
            scrape_book.close()


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
