"""Start what is stopped, reload what changed, touch nothing else.

systemd where it runs (/run/systemd/system), else the init scripts: the lab's hosts
are chroots without systemd. Only the policy daemon is ever restarted, and only when
its code changed: a reload keeps the counters but cannot load new code.
"""

from __future__ import annotations

from deploys.tasks.policyd import needs_install
from deploys.tasks.prepare import HostRun
from pyinfra.context import host
from pyinfra.operations import server

from relayops.compile.files import Service
from relayops.deploy.counters import redis_bind, redis_placement
from relayops.deploy.hostplan import LOG_DIR, REDIS_SERVICE, START_ORDER, SYSTEMD_UNIT
from relayops.deploy.ordering import positioned
from relayops.deploy.state import reloads


def to_start(run: HostRun) -> set[str]:
    return {s for s in run.plan.services if not run.running.get(s, False)}


def to_reload(run: HostRun) -> set[str]:
    changed = reloads(run.plan.config, run.changed, run.plan.reload_extra)
    if REDIS_SERVICE in run.plan.services and not run.facts.redis_include:
        changed.add(REDIS_SERVICE)
    return {s for s in changed if s in run.plan.services and run.running.get(s, False)}


def _control(run: HostRun, service: str, verb: str) -> str:
    if run.facts.systemd:
        return f"systemctl {verb} {service}"
    # A daemon started by an init script inherits the script's stdout/stderr; over SSH those
    # are the session's, which then never closes (Dovecot keeps stderr). Give it a log file.
    log = f"{LOG_DIR}/init-{service}.log"
    return (
        f"off=$(stat -c %s {log} 2>/dev/null || echo 0); "
        f"/etc/init.d/{service} {verb} </dev/null >>{log} 2>&1; rc=$?; "
        f"tail -c +$((off + 1)) {log}; exit $rc"
    )


def converge(run: HostRun) -> None:
    if run.facts.systemd and SYSTEMD_UNIT in run.changed:
        server.shell(
            name="systemd daemon-reload",
            commands=["systemctl daemon-reload", "systemctl enable relayops-policyd"],
        )
    actions = [(s, a) for s in run.plan.services if (a := action(run, s)) is not None]
    # Positions by start order across hosts: Redis starts before any host's policy daemon.
    for service, verb in positioned(host, actions, lambda item: START_ORDER.index(item[0])):
        if service == REDIS_SERVICE and verb == "reload":
            # Redis has no reload; its bind list changes at runtime instead.
            command = _redis_runtime(run)
        else:
            command = _control(run, service, verb)
        server.shell(name=f"{verb.capitalize()} {service}", commands=[command])


def action(run: HostRun, service: str) -> str | None:
    """start, reload, restart (policy daemon with new code only) or None (leave it alone)."""
    if service in to_start(run):
        return "start"
    if service == Service.POLICYD.value and needs_install(run):
        return "restart"
    if service in to_reload(run):
        return "reload"
    return None


def _redis_runtime(run: HostRun) -> str:
    placement = redis_placement(run.target.inventory)
    assert placement is not None  # only the counters host runs Redis
    binds = " ".join(redis_bind(placement))
    return f"redis-cli CONFIG SET bind '{binds}' && redis-cli CONFIG SET protected-mode no"
