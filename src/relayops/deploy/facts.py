"""pyinfra facts the relay deploy reads once per host, each a single remote command.

Parsing is pure (`relayops.deploy.state.parse_states`, and `parse_host_facts` and
`parse_statuses` here) and tested on captured output; the commands never fail, a missing
path or service is data.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from pyinfra.api.facts import FactBase

from relayops.deploy import instances
from relayops.deploy.counters import INCLUDE_LINE, REDIS_MAIN
from relayops.deploy.hostplan import PIDFILES
from relayops.deploy.state import PathState, parse_states


class PathStates(FactBase[dict[str, PathState]]):
    """Type, mode, owner, group of each path and the SHA-1 of the regular files among them."""

    @staticmethod
    def default() -> dict[str, PathState]:
        return {}

    def command(self, paths: Sequence[str]) -> str:
        quoted = " ".join(shlex.quote(p) for p in paths)
        # Missing paths only print to stderr; `true` keeps the fact from failing on them.
        # One sha1sum for all: it hashes the regular files and only complains (to stderr)
        # about directories and missing paths. A process per path cost a fleet deploy
        # about a tenth of a second of CPU per host (bench/deploy/RESULTS.md).
        return (
            f"stat -c '%F|%a|%U|%G|%n' -- {quoted} 2>/dev/null; "
            f"sha1sum -- {quoted} 2>/dev/null; true"
        )

    def process(self, output: list[str]) -> dict[str, PathState]:
        return parse_states(output)


@dataclass(frozen=True)
class HostFacts:
    """The few things about the host that choose how to deploy."""

    systemd: bool  # /run/systemd/system exists: systemctl, else /etc/init.d scripts
    python: str | None  # "3.11.2" of /usr/bin/python3, None when absent
    accounts: frozenset[str]  # user names in /etc/passwd
    marker: str | None  # content of the policy daemon's installed-wheels marker
    redis_include: bool  # redis.conf includes the relayops drop-in


def parse_host_facts(output: Sequence[str]) -> HostFacts:
    """Parse `key=value` lines of `HostBasics` (users comma-separated)."""
    values: dict[str, str] = {}
    for line in output:
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value.strip()
    return HostFacts(
        systemd=values.get("systemd") == "yes",
        python=values.get("python") or None,
        accounts=frozenset(filter(None, values.get("users", "").split(","))),
        marker=values.get("marker") or None,
        redis_include=values.get("redis_include") == "yes",
    )


class HostBasics(FactBase[HostFacts]):
    """Init system, Python version, accounts and the policy daemon's wheel marker."""

    def command(self, marker_path: str) -> str:
        marker = shlex.quote(marker_path)
        include = shlex.quote(INCLUDE_LINE)
        return (
            "if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi; "
            # `python3 --version` prints "Python 3.11.2" without starting the interpreter.
            "echo python=$(python3 --version 2>/dev/null | cut -d' ' -f2); "
            "echo users=$(cut -d: -f1 /etc/passwd | paste -sd, -); "
            f"echo marker=$(cat {marker} 2>/dev/null); "
            f"grep -qxF {include} {REDIS_MAIN} 2>/dev/null && echo redis_include=yes; true"
        )

    def process(self, output: list[str]) -> HostFacts:
        return parse_host_facts(output)


def parse_statuses(output: Sequence[str]) -> dict[str, bool]:
    """`name=<exit status>` lines -> running (LSB: 0 running; 1-3 not running; 4 unknown)."""
    found: dict[str, bool] = {}
    for line in output:
        name, sep, code = line.partition("=")
        if sep and code.strip().isdigit():
            found[name] = int(code) == 0
    return found


class ServicesRunning(FactBase[dict[str, bool]]):
    """Whether each named service runs, through systemctl or its init script's `status`."""

    @staticmethod
    def default() -> dict[str, bool]:
        return {}

    def command(self, services: Sequence[str], systemd: bool) -> str:
        parts = []
        for name in services:
            quoted = shlex.quote(name)
            pidfile = PIDFILES.get(name)
            if instances.is_instance(name):
                probe = instances.running_probe(name, systemd=systemd)
            elif systemd:
                probe = f"systemctl is-active --quiet {quoted}"
            elif pidfile:
                # What the init scripts' `status` checks, without their shell and LSB
                # library: about 6 ms of CPU a service on a lab host (bench/deploy).
                probe = f"kill -0 $(cat {pidfile} 2>/dev/null)"
            else:
                probe = f"[ -x /etc/init.d/{quoted} ] && /etc/init.d/{quoted} status"
            parts.append(f"{probe} >/dev/null 2>&1; echo {quoted}=$?")
        return "; ".join(parts) + "; true"

    def process(self, output: list[str]) -> dict[str, bool]:
        return parse_statuses(output)


def services_probe(services: Sequence[str]) -> str:
    """ServicesRunning's probe, choosing systemctl or the init scripts on the host itself."""
    probe = ServicesRunning()
    # With no services the probe is "; true": no command may start with ";".
    systemd = probe.command(services, True).removeprefix("; ")
    scripts = probe.command(services, False).removeprefix("; ")
    return f"if [ -d /run/systemd/system ]; then {systemd}; else {scripts}; fi"


def packages_probe(packages: Sequence[str]) -> str:
    """`installed NAME` for each of `packages` dpkg has installed (missing ones: nothing)."""
    names = " ".join(shlex.quote(p) for p in packages)
    return f"dpkg-query -W -f='${{db:Status-Status}} ${{Package}}\\n' {names} 2>/dev/null; true"


def parse_packages(output: Sequence[str]) -> frozenset[str]:
    """`installed postfix` lines -> {"postfix"}; any other status is not installed."""
    return frozenset(
        name for status, _, name in (line.partition(" ") for line in output)
        if status == "installed" and name
    )  # fmt: skip


SECTION = "relayops-snapshot-section"


@dataclass(frozen=True)
class Snapshot:
    """All the deploy reads from one host, read by one command (one SSH round trip)."""

    facts: HostFacts
    states: dict[str, PathState]
    running: dict[str, bool]
    installed: frozenset[str]
    manifest: list[str]  # the manifest fact's lines (relayops.deploy.removal_steps)


def split_sections(output: Sequence[str], count: int) -> list[list[str]]:
    """The output of `count` commands joined by `echo SECTION`, one list of lines each."""
    sections: list[list[str]] = [[]]
    for line in output:
        if line == SECTION:
            sections.append([])
        else:
            sections[-1].append(line)
    if len(sections) != count:
        raise ValueError(f"expected {count} sections of host facts, got {len(sections)}")
    return sections


class HostSnapshot(FactBase[Snapshot]):
    """HostBasics, PathStates, ServicesRunning, installed packages and the manifest at once.

    A fact costs an SSH channel, a remote shell and pyinfra's own work per host; on a
    fleet those add up on the controller's one gevent thread (bench/deploy/RESULTS.md):
    one command instead of five per host.
    """

    def command(
        self,
        marker_path: str,
        paths: Sequence[str],
        services: Sequence[str],
        packages: Sequence[str],
        manifest: str,
    ) -> str:
        parts = [
            HostBasics().command(marker_path),
            PathStates().command(paths),
            services_probe(services),
            packages_probe(packages),
            manifest,
        ]
        return f"; echo {SECTION}; ".join(parts)

    def process(self, output: list[str]) -> Snapshot:
        basics, states, running, packages, manifest = split_sections(output, 5)
        return Snapshot(
            facts=parse_host_facts(basics),
            states=parse_states(states),
            running=parse_statuses(running),
            installed=parse_packages(packages),
            manifest=manifest,
        )
