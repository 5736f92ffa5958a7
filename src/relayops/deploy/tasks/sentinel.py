"""Send changed Sentinel settings and passwords to the host's running sentinel.

After the services step (a sentinel whose ACL file changed has restarted with it by
then); the decisions are pure (relayops.deploy.sentinel_settings).
"""

from __future__ import annotations

import io
import shlex

from pyinfra.api.deploy import deploy
from pyinfra.api.facts import FactBase
from pyinfra.context import host
from pyinfra.operations import files, server

from relayops.deploy import redis_conf as rc
from relayops.deploy.sentinel_settings import (
    changed_names,
    parse_settings,
    redis_cli_input,
    settings_commands,
    settings_probe,
)
from relayops.deploy.tasks.prepare import HostRun

# Root's, mode 600, removed right after use: holds AUTH and any new password.
COMMANDS_FILE = "/etc/redis/.relayops-sentinel-settings"


class SentinelFileSettings(FactBase[dict[str, str] | None]):
    """The managed settings the sentinel's file holds (passwords as digests only)."""

    def command(self, conf: str, master: str) -> str:
        return settings_probe(conf, master)

    def process(self, output: list[str]) -> dict[str, str] | None:
        return parse_settings(output)


@deploy("Sentinel settings")
def roll_out(run: HostRun) -> None:
    wanted = run.sentinel_settings
    if wanted is None:
        return
    current = host.get_fact(SentinelFileSettings, conf=wanted.conf, master=wanted.master)
    commands = settings_commands(wanted, current)
    if not commands:
        return
    text = redis_cli_input(rc.SENTINEL_USER, wanted.values["sentinel-pass"], commands)
    files.put(
        name="Sentinel settings to send",
        src=io.BytesIO(text.encode()),
        dest=COMMANDS_FILE,
        mode="600",
        user="root",
        group="root",
    )
    f = shlex.quote(COMMANDS_FILE)
    # Every reply must be OK (AUTH's included); any other is printed (no password is).
    server.shell(
        name=f"Set {', '.join(changed_names(commands))} on the running sentinel",
        commands=[
            f"out=$({wanted.redis_cli()} < {f} 2>&1); rc=$?; rm -f {f}; "
            'bad=$(printf "%s\\n" "$out" | grep -vx OK); '
            '[ -z "$bad" ] || printf "%s\\n" "$bad"; [ $rc -eq 0 ] && [ -z "$bad" ]'
        ],
    )
