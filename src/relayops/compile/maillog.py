"""The relay's log follower as compiled files: `relayops feedback maillog --follow`.

Every relay runs it (service `relayops-maillog`) over every Postfix output instance's
`maillog_file` (compile/instances.py: /var/log/postfix-<egress>.log): the relay's own
synchronous refusals (a 5xx from the receiver during the relay's SMTP session) are
recorded in the daemon's store as they are logged (docs/feedback.md). The pattern is
a glob the follower expands again while it runs, so an output instance a deploy adds
is followed from its first line.
"""

from __future__ import annotations

from relayops.backoff.names import INSTANCE_PREFIX
from relayops.compile.files import Daemon, ManagedFile
from relayops.compile.policy import store_arguments
from relayops.compile.templates import Templates
from relayops.hostlayout import MAILLOG_STATE_DIR, RULES_PATH
from relayops.model import Inventory

DEFAULTS_PATH = "/etc/default/relayops-maillog"
# Every output instance's maillog_file (the instances' main.cf template).
INSTANCE_LOGS = f"/var/log/{INSTANCE_PREFIX}*.log"


def follower_arguments(inventory: Inventory) -> list[str]:
    """`relayops feedback maillog` arguments: the daemon's store and rules."""
    return [
        "feedback", "maillog", INSTANCE_LOGS, "--follow",
        "--state-dir", MAILLOG_STATE_DIR,
        "--rules", RULES_PATH,
        *store_arguments(inventory),
    ]  # fmt: skip


def maillog_files(inventory: Inventory, templates: Templates) -> list[ManagedFile]:
    """Its arguments; a change restarts it (it keeps its positions across restarts)."""
    defaults = templates.render(DEFAULTS_PATH, arguments=" ".join(follower_arguments(inventory)))
    return [ManagedFile(DEFAULTS_PATH, defaults, 0o644, "root", "root", Daemon.MAILLOG)]
