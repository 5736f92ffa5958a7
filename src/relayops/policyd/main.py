"""`relayops` as the daemon's own build installs it on a relay: only `relayops policyd`.

The relay's venv holds the `relayops-policyd` distribution (relayops.policyd and its
dependencies, deploy/wheels.py), so the init script's `relayops policyd …` works the
same as on a full install, and no compiler, deploy or lab code is on a relay.
"""

from __future__ import annotations

import click

from relayops.policyd.cli import EXIT_CODES_HELP, policyd


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
def daemon_cli() -> None:
    """The relayops policy daemon (the relay hosts' build)."""


daemon_cli.add_command(policyd)


def main() -> None:
    daemon_cli(prog_name="relayops")
