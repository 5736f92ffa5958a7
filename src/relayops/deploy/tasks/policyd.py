"""The policy daemon's code: wheels built on the controller, installed offline into a venv.

The host's marker file holds the digest of the installed wheel set; when it matches,
nothing is uploaded. A new wheel set means new code, which only a restart loads
(configuration changes, by contrast, only ever reload).
"""

from __future__ import annotations

import shlex

from pyinfra.api.deploy import deploy
from pyinfra.operations import server

from relayops.deploy.operations import upload_wheels
from relayops.deploy.tasks.prepare import HostRun
from relayops.deploy.wheels import DAEMON_DIST
from relayops.hostlayout import MARKER, VENV, WHEEL_DIR


def needs_install(run: HostRun) -> bool:
    return run.facts.marker != run.wheels.digest


@deploy("Policy daemon code")
def install(run: HostRun) -> None:
    if not needs_install(run):
        return
    upload_wheels(
        name=f"Upload {len(run.wheels.wheels)} policy daemon wheels",
        wheels=run.wheels.wheels,
        directory=WHEEL_DIR,
    )
    pip = f"{VENV}/bin/pip --disable-pip-version-check --no-cache-dir"
    offline = f"--no-index --find-links {WHEEL_DIR}"
    server.shell(
        name="Install the policy daemon into /opt/relayops/venv",
        commands=[
            f"[ -x {VENV}/bin/python ] || python3 -m venv {VENV}",
            # Earlier deploys installed the whole engine; the daemon's build replaces it.
            f"{pip} uninstall --quiet --yes relayops >/dev/null 2>&1 || true",
            # One version number for every build: reinstall the daemon itself first, so
            # the next line reads the new build's dependencies (with the old build's
            # metadata installed, pip sees "0.1.0 already satisfied" and never installs a
            # dependency the daemon gained, such as kilter.protocol for the milter).
            f"{pip} install --quiet {offline} --force-reinstall --no-deps {DAEMON_DIST}",
            f"{pip} install --quiet {offline} --upgrade --upgrade-strategy eager {DAEMON_DIST}",
            f"echo {shlex.quote(run.wheels.digest)} > {MARKER}",
        ],
    )
