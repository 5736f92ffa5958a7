"""What happens to each service in a deploy, and the command that does it: pure.

Start what is stopped; reload what runs and had a file changed; restart only the
policy daemon and the back-off services, and only for new code (a reload keeps counters
but cannot load code).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from relayops.backoff.names import SERVE_SERVICE as BACKOFF_SERVE
from relayops.compile.files import Daemon
from relayops.deploy import instances, tls
from relayops.deploy.hostplan import BACKOFF_SERVICES, LOG_DIR, REDIS_SERVICE, SENTINEL_SERVICE

# Services running the relay wheel's code: new wheels restart them (a reload cannot load code).
CODE_SERVICES = frozenset({Daemon.POLICYD.value, Daemon.MAILLOG.value, *BACKOFF_SERVICES})


def service_actions(
    services: Sequence[str],
    running: Mapping[str, bool],
    changed: Iterable[str],
    *,
    new_code: bool,
) -> list[tuple[str, str]]:
    """(service, "start" | "reload" | "restart") in `services` order; untouched ones omitted.

    >>> service_actions(["opendkim", "postfix"], {"opendkim": True}, ["opendkim"], new_code=False)
    [('opendkim', 'reload'), ('postfix', 'start')]
    """
    wanted = set(changed)
    actions = []
    for service in services:
        if not running.get(service, False):
            actions.append((service, "start"))
        elif service in CODE_SERVICES and new_code:
            actions.append((service, "restart"))
        elif service in wanted:
            actions.append((service, "reload"))
    return actions


def policyd_restarts(changed: Iterable[str], *, new_code: bool) -> bool:
    """New code, or a new CA for its rediss:// store: the daemon builds its TLS context once,
    at start (a reload rereads policy.json only), so with a new lab CA it would refuse the
    counters' new certificates until restarted.

    >>> policyd_restarts(["/etc/relayops/tls/ca.pem"], new_code=False)
    True
    >>> policyd_restarts(["/etc/relayops/policy.json"], new_code=False)
    False
    """
    return new_code or tls.CA_PATH in set(changed)


def control_command(service: str, verb: str, *, systemd: bool) -> str:
    """systemctl where systemd runs; else the init script, its output kept in a log file.

    A daemon started by an init script inherits the script's stdout and stderr; over SSH
    those are the session's, which then never closes (Dovecot keeps stderr open).
    """
    # Postfix output instances and the submission instance's own reload: postmulti(1).
    command = instances.control(service, verb, systemd=systemd)
    if systemd:
        return command or f"systemctl {verb} {service}"
    log = f"{LOG_DIR}/init-{service}.log"
    command = f"{{ {command}; }}" if command else f"/etc/init.d/{service} {verb}"
    return (
        f"off=$(stat -c %s {log} 2>/dev/null || echo 0); "
        f"{command} </dev/null >>{log} 2>&1; rc=$?; "
        f"tail -c +$((off + 1)) {log}; exit $rc"
    )


def control_verb(service: str, verb: str) -> str:
    """Redis, Sentinel and the back-off socketmap have no reload (users, TLS and ports
    are read at start): they restart. So does the log follower (its arguments are read at
    start; it keeps its positions, and it rereads policy.json by itself when it changes).

    A restart keeps the counters: Redis writes its AOF/RDB on SIGTERM and reads it back;
    Sentinel keeps what it learnt in its configuration file.
    """
    restarts = (REDIS_SERVICE, SENTINEL_SERVICE, BACKOFF_SERVE, Daemon.MAILLOG.value)
    return "restart" if service in restarts and verb == "reload" else verb
