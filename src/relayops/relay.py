"""`relayops` as the relay wheel installs it: `relayops policyd`, the relay's side of
the feedback loop, `relayops feedback ingest|maillog` (the Postfix pipe, the log reader),
and the back-off services `relayops backoff watch|serve|status`.

The relay's venv holds the `relayops-policyd` distribution (relayops.policyd, the
feedback reader relayops.feedback without its operator commands, this module, and their
dependencies: deploy/wheels.py), so the init script's `relayops policyd …` and
master.cf's `relayops feedback ingest …` work as on a full install, and no compiler,
deploy or lab code is on a relay (import-linter keeps it so).
"""

from __future__ import annotations

import click

from relayops.backoff.cli import backoff
from relayops.feedback.relay_cli import EXIT_CODES_HELP as FEEDBACK_EXIT_CODES
from relayops.feedback.relay_cli import ingest_command, maillog
from relayops.policyd.cli import EXIT_CODES_HELP, policyd


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
def relay_cli() -> None:
    """The relayops policy daemon and feedback ingester (the relay hosts' build)."""


@relay_cli.group(epilog=FEEDBACK_EXIT_CODES)
def feedback() -> None:
    """The relay's side of the feedback loop: reports by mail (ingest), Postfix's log."""


relay_cli.add_command(policyd)
relay_cli.add_command(backoff)
feedback.add_command(ingest_command)
feedback.add_command(maillog)


def main() -> None:
    relay_cli(prog_name="relayops")
