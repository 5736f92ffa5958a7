"""The one entry point, `relayops`.

Subcommands live in the module of their concern and are imported lazily, so
`relayops validate` does not pay for importing the policy daemon or pyinfra.
Exit codes: 0 ok, 1 checks failed, 2 invalid input or usage.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from relayops.commands.options import EXIT_CODES_HELP

# name -> "module:attribute" of a click command
_COMMANDS: dict[str, str] = {
    "validate": "relayops.commands.validate:validate",
    "schemas": "relayops.commands.schemas:schemas",
    "summary": "relayops.commands.summary:summary",
    "render": "relayops.compile.cli:render",
    "plan": "relayops.compile.cli:plan",
    "dkim": "relayops.compile.cli:dkim",
    "redis-passwords": "relayops.commands.redis_passwords:redis_passwords",
    "policyd": "relayops.policyd.cli:policyd",
    "lab": "relayops.lab.cli:lab",
    "deploy": "relayops.deploy.cli:deploy",
    "demo": "relayops.lab.demo:demo",
    "check": "relayops.checks.cli:check",
    "audit": "relayops.audit.cli:audit",
    "customer": "relayops.commands.customer:customer",
    "drift": "relayops.deploy.drift:drift",
    "feedback": "relayops.feedback.cli:feedback",
    "warmup": "relayops.warmup.cli:warmup",
    "backoff": "relayops.backoff.cli:backoff",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("relayops"):
                return _unavailable(cmd_name)
            raise
        command: click.Command = getattr(module, attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """A subcommand's usage error in the one error style: `relayops <command>: <message>`."""
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            failing = getattr(exc, "ctx", None)
            parts: list[str] = []
            while failing is not None and failing.parent is not None:
                parts.append(failing.info_name or "")
                failing = failing.parent
            name = " ".join(reversed(parts))
            click.echo(f"relayops{' ' + name if name else ''}: {exc.format_message()}", err=True)
            if isinstance(exc, click.UsageError) and name:
                click.echo(f"Try 'relayops {name} --help'.", err=True)
            raise click.exceptions.Exit(exc.exit_code) from exc


def _unavailable(name: str) -> click.Command:
    def fail() -> None:
        raise click.UsageError(f"'{name}' is not available in this build")

    return click.Command(name, callback=fail, help="(not available in this build)")


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(package_name="relayops")
def cli() -> None:
    """Run a paid SMTP relay service from a Git repository."""


def main() -> None:
    cli(prog_name="relayops")
