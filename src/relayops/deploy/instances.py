"""Postfix output instances as services of the deploy: probe, start, reload, check, stop.

Each instance (compile/instances.py) is the service `postfix@<instance>`, the name
Debian's systemd template unit gives it. Without systemd (the lab's chroots) the deploy
drives it with postmulti(1), which acts on that instance alone. The submission instance
stays the service `postfix`; its reload goes through postmulti too, because Debian's init
script reloads every instance (`postfix reload` runs the multi-instance wrapper) and a
deploy reloads only what changed. Pure: commands as strings.
"""

from __future__ import annotations

import shlex

from relayops.compile.files import Daemon
from relayops.compile.instances import INSTANCE_SERVICE_PREFIX, config_dir

DEFAULT_INSTANCE = "-"  # postmulti(1)'s name for the default (submission) instance


def is_instance(service: str) -> bool:
    return service.startswith(INSTANCE_SERVICE_PREFIX)


def instance_name(service: str) -> str:
    """`postfix@postfix-ip-x` -> `postfix-ip-x`."""
    return service.removeprefix(INSTANCE_SERVICE_PREFIX)


def _postmulti(instance: str, verb: str) -> str:
    return f"postmulti -i {shlex.quote(instance)} -p {verb}"


def running_probe(service: str, *, systemd: bool) -> str:
    """A command whose exit status is 0 only while the instance's master runs."""
    if systemd:
        return f"systemctl is-active --quiet {shlex.quote(service)}"
    return _postmulti(instance_name(service), "status")


def control(service: str, verb: str, *, systemd: bool) -> str | None:
    """The command for an instance, or the submission instance's reload; None: the default.

    Starting is idempotent: Debian's init script, run to start `postfix`, starts every
    enabled instance already, and `postfix start` fails on one that runs.
    """
    if service == Daemon.POSTFIX.value:
        if verb != "reload":
            return None  # the init script or unit, as for any daemon
        return "systemctl reload postfix@-" if systemd else _postmulti(DEFAULT_INSTANCE, "reload")
    if not is_instance(service):
        return None
    if systemd:
        return f"systemctl {verb} {shlex.quote(service)}"
    name = instance_name(service)
    if verb == "start":
        return f"{_postmulti(name, 'status')} >/dev/null 2>&1 || {_postmulti(name, 'start')}"
    return _postmulti(name, verb)


def check_command(service: str) -> str:
    """`postfix check` of one instance (before it starts or reloads), with `-c`: see
    hostplan.CHECKS."""
    return f"postfix -c {shlex.quote(config_dir(instance_name(service)))} check"


def stop_command(config_dir: str) -> str:
    """Stop an instance no longer listed in the submission instance's main.cf.

    postmulti(1) knows only listed instances; `postfix -c` reaches the removed one.
    """
    quoted = shlex.quote(config_dir)
    return f"if postfix -c {quoted} status >/dev/null 2>&1; then postfix -c {quoted} stop; fi"
