"""`relayops redis-passwords`: Redis ACL users' passwords, age-encrypted in secrets/redis/."""

from __future__ import annotations

from pathlib import Path

import click

from relayops.commands.options import EXIT_CODES_HELP, emit_json, fail, json_option, repo_option
from relayops.compile.dkim import DkimKeyError
from relayops.compile.redis_secrets import generate_passwords, password_source
from relayops.deploy.redis_conf import USERS


@click.command("redis-passwords", epilog=EXIT_CODES_HELP)
@click.option(
    "--rotate",
    "rotate",
    multiple=True,
    type=click.Choice(USERS),
    help="Replace this user's password (repeatable); then deploy, which restarts Redis.",
)
@repo_option
@json_option
def redis_passwords(rotate: tuple[str, ...], repo: Path, as_json: bool) -> None:
    """Make the missing Redis passwords (one per ACL user), encrypted to secrets/recipients.txt."""
    try:
        written = generate_passwords(repo, USERS)
        if rotate:
            written += generate_passwords(repo, tuple(rotate), overwrite=True)
    except DkimKeyError as exc:
        fail(str(exc))
    names = sorted({str(p.relative_to(repo)) for p in written})
    if as_json:
        emit_json({"ok": True, "written": names, "users": {u: password_source(u) for u in USERS}})
        return
    for name in names:
        click.echo(f"{name} (encrypted)")
    if not names:
        click.echo("every Redis user has a password")
