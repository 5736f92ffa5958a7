"""Debian packages and the service accounts the packages do not create.

The lab image has every package already, so there this is the `dpkg-query` of the
deploy's one read of the host (relayops.deploy.facts.HostSnapshot);
production installs what is missing (with `apt-get update` only then).
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.operations import apt, server

from relayops.deploy.hostplan import ACCOUNTS, wanted_packages
from relayops.deploy.tasks.prepare import HostRun

# Debian's postfix asks these on install; the deploy rewrites main.cf right after.
POSTFIX_DEBCONF = (
    "postfix postfix/main_mailer_type select No configuration\n"
    "postfix postfix/mailname string localhost\n"
)


@deploy("Packages and accounts")
def ensure(run: HostRun) -> None:
    missing = [name for name in wanted_packages(run.plan.services) if name not in run.installed]
    if missing:
        if "postfix" in missing:
            server.shell(
                name="Preseed postfix's debconf answers",
                commands=[f"printf '{POSTFIX_DEBCONF}' | debconf-set-selections"],
            )
        apt.packages(
            name=f"Install {' '.join(missing)}",
            packages=missing,
            update=True,
            no_recommends=True,
        )
    for account, home in ACCOUNTS:
        if account not in run.facts.accounts:
            server.shell(
                name=f"Create system account {account}",
                commands=[
                    f"useradd --system --user-group --home-dir {home} --no-create-home "
                    f"--shell /usr/sbin/nologin {account}"
                ],
            )
