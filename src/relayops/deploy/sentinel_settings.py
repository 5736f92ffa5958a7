"""Roll the repository's Sentinel settings and passwords out to running Sentinels.

The deploy writes a sentinel's configuration file only when it is missing (Sentinel
owns it afterwards: relayops.deploy.sentinel), so a later change of the quorum, the
timeouts or a password would never reach it that way. Instead the deploy reads the
settings the file holds now (`settings_probe`, one command on the host; passwords
come back only as SHA-256 digests), and for each that differs from the repository's
sends Sentinel the command that changes it at run time — ``SENTINEL SET`` for the
monitored master's, ``SENTINEL CONFIG SET`` for the sentinel-to-sentinel user and
password (Redis >= 7.0) — which Sentinel applies and writes to its file itself, next
to the state it records there (current primary, replicas, epochs). A redeploy with
nothing changed finds nothing to send.

Pure: text in, commands out (relayops.deploy.tasks.sentinel runs them).
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relayops.deploy import redis_conf as rc
from relayops.deploy.errors import DeployError

# Sentinel leaves out of its file a setting at its default value (CONFIG REWRITE):
# a missing line means the default (redis.io, sentinel.conf of Redis 7.0).
DEFAULTS: Mapping[str, str] = {
    "down-after-milliseconds": "30000",
    "failover-timeout": "180000",
    "parallel-syncs": "1",
}
# The monitored master's settings the deploy manages (SENTINEL SET), in this order.
MASTER_SETTINGS = (
    "quorum",
    "down-after-milliseconds",
    "failover-timeout",
    "parallel-syncs",
    "auth-user",
    "auth-pass",
)
# The sentinel's own (SENTINEL CONFIG SET).
SENTINEL_SETTINGS = ("sentinel-user", "sentinel-pass")
SECRET = frozenset({"auth-pass", "sentinel-pass"})


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class SentinelSettings:
    """What the repository wants of one sentinel (plaintext passwords: never printed)."""

    conf: str  # the sentinel's configuration file
    master: str
    values: Mapping[str, str]  # MASTER_SETTINGS + SENTINEL_SETTINGS -> value
    port: int  # where the deploy reaches it on the host (127.0.0.1)
    ca: str | None  # the CA bundle when that port is TLS

    def __repr__(self) -> str:
        return f"SentinelSettings({self.conf!r}, {self.master!r}, ***)"

    def redis_cli(self) -> str:
        """redis-cli to this sentinel, commands on standard input."""
        tls = f" --tls --cacert {shlex.quote(self.ca)}" if self.ca else ""
        return f"redis-cli -h 127.0.0.1 -p {self.port}{tls} --no-auth-warning"


def wanted_settings(
    node: rc.SentinelNode, passwords: rc.RedisPasswords, conf: str
) -> SentinelSettings:
    """The settings of the rendered configuration (rc.sentinel_values), by Sentinel's names."""
    values = rc.sentinel_values(node, passwords)
    return SentinelSettings(
        conf=conf,
        master=node.master,
        port=node.tls_port or node.port,
        ca=node.tls.ca if node.tls else None,
        values={
            "quorum": str(values["quorum"]),
            "down-after-milliseconds": str(values["down_after_ms"]),
            "failover-timeout": str(values["failover_timeout_ms"]),
            "parallel-syncs": "1",  # as the template writes it
            "auth-user": str(values["sentinel_user"]),
            "auth-pass": str(values["sentinel_password"]),
            "sentinel-user": str(values["sentinel_user"]),
            "sentinel-pass": str(values["sentinel_password"]),
        },
    )


def settings_probe(conf: str, master: str) -> str:
    """A shell command printing the file's managed settings as ``NAME VALUE`` lines,
    passwords as ``NAME sha256:<hex>``; nothing when the file is missing."""
    f, m = shlex.quote(conf), shlex.quote(master)
    # awk picks the lines; the two passwords go through sha256sum, never printed in clear.
    pick = (
        f"awk -v m={m} '"
        '$1=="sentinel" && $2=="monitor" && $3==m {print "quorum", $6} '
        '$1=="sentinel" && $3==m && ($2=="down-after-milliseconds" || $2=="failover-timeout" '
        '|| $2=="parallel-syncs" || $2=="auth-user") {print $2, $4} '
        '$1=="sentinel" && $2=="sentinel-user" {print $2, $3}'
        f"' {f}"
    )

    def hashed(name: str, awk_test: str, field: str) -> str:
        value = f"awk -v m={m} '{awk_test} {{print {field}}}' {f}"
        return (
            f'p=$({value}); [ -z "$p" ] || '
            f"echo {name} sha256:$(printf %s \"$p\" | sha256sum | cut -d' ' -f1)"
        )

    return (
        f"if [ -f {f} ]; then {pick}; "
        + hashed("auth-pass", '$1=="sentinel" && $2=="auth-pass" && $3==m', "$4")
        + "; "
        + hashed("sentinel-pass", '$1=="sentinel" && $2=="sentinel-pass"', "$3")
        + "; fi; true"
    )


def parse_settings(output: Sequence[str]) -> dict[str, str] | None:
    """The probe's lines as {name: value}, defaults filled in; None when the file is
    missing (no line at all: the deploy writes it whole)."""
    found: dict[str, str] = {}
    for line in output:
        name, _, value = line.strip().partition(" ")
        if name in MASTER_SETTINGS or name in SENTINEL_SETTINGS:
            found[name] = value.strip()
    if not found:
        return None
    return {**DEFAULTS, **found}


def _differs(name: str, want: str, have: str | None) -> bool:
    if name in SECRET:
        return have != f"sha256:{digest(want)}"
    return have != want


def settings_commands(
    wanted: SentinelSettings, current: Mapping[str, str] | None
) -> list[list[str]]:
    """The commands that bring the running sentinel to `wanted` ([] when it is there,
    or when there is no file yet: then the deploy writes it as wanted)."""
    if current is None:
        return []
    master = [
        part
        for name in MASTER_SETTINGS
        if _differs(name, wanted.values[name], current.get(name))
        for part in (name, wanted.values[name])
    ]
    commands = [["SENTINEL", "SET", wanted.master, *master]] if master else []
    commands += [
        ["SENTINEL", "CONFIG", "SET", name, wanted.values[name]]
        for name in SENTINEL_SETTINGS
        if _differs(name, wanted.values[name], current.get(name))
    ]
    return commands


def changed_names(commands: Sequence[Sequence[str]]) -> list[str]:
    """The settings `commands` change, for the operation's name (no values: passwords)."""
    names: list[str] = []
    for command in commands:
        if command[:2] == ["SENTINEL", "SET"]:
            names += list(command[3::2])
        else:
            names.append(command[3])
    return names


def redis_cli_input(user: str, password: str, commands: Sequence[Sequence[str]]) -> str:
    """redis-cli's standard input: AUTH, then the commands, one a line.

    Through a file of mode 600, not the command line: the passwords would show in
    ps and in the deploy's log. Values are single words (token_urlsafe passwords,
    numbers, user names); anything else is refused rather than quoted.
    """
    lines = [["AUTH", user, password], *commands]
    for line in lines:
        for word in line:
            if not word or any(c.isspace() or c in "\"'\\" for c in word):
                raise DeployError("a Sentinel setting is not a single plain word (spaces, quotes)")
    return "".join(" ".join(line) + "\n" for line in lines)
