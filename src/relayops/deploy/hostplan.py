"""Everything one relay host gets, as data: the compiler's files plus what the deploy adds.

The deploy adds only what the compiler cannot know: decrypted keys, the TLS
certificate and its CA, the policy daemon's service files and, on the counters host,
Redis's configuration, users and TLS files. One list of wanted files makes one state
query and one diff.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from relayops.backoff.names import SERVE_SERVICE as BACKOFF_SERVE
from relayops.backoff.names import WATCH_SERVICE as BACKOFF_WATCH
from relayops.compile.files import Daemon, Directory, HostConfig
from relayops.compile.instances import INSTANCE_SERVICE_PREFIX
from relayops.deploy import tls
from relayops.deploy.counters import REDIS_TLS
from relayops.deploy.state import Wanted, map_db, wanted_files, wanted_secrets
from relayops.hostlayout import (
    CONFIG_DIR,
    OPT_DIR,
    STATE_DIR,
    TLS_DIR,
)
from relayops.labca import Pem

INIT_SCRIPT = "/etc/init.d/relayops-policyd"
SYSTEMD_UNIT = "/etc/systemd/system/relayops-policyd.service"
REDIS_SERVICE = "redis-server"
SENTINEL_SERVICE = "relayops-sentinel"  # relayops.deploy.sentinel: why not Debian's
SENTINEL_INIT_SCRIPT = "/etc/init.d/relayops-sentinel"
SENTINEL_SYSTEMD_UNIT = "/etc/systemd/system/relayops-sentinel.service"
# Automatic back-off (compile/backoff.py): on every relay, each an init script and a unit.
BACKOFF_SERVICES: tuple[str, ...] = (BACKOFF_SERVE, BACKOFF_WATCH)


def init_script(service: str) -> str:
    return f"/etc/init.d/{service}"


def systemd_unit(service: str) -> str:
    return f"/etc/systemd/system/{service}.service"


REDIS_TLS_DIR = REDIS_TLS.cert.rsplit("/", 1)[0]
LOG_DIR = "/var/log/relayops"
# Accounts the packages do not create; (name, home).
ACCOUNTS: tuple[tuple[str, str], ...] = (("relayops", STATE_DIR), ("vmail", "/var/vmail"))
DEPLOY_DIRECTORIES: tuple[Directory, ...] = (
    Directory(CONFIG_DIR, 0o755, "root", "root"),
    Directory(TLS_DIR, 0o755, "root", "root"),
    Directory(OPT_DIR, 0o755, "root", "root"),
    Directory(STATE_DIR, 0o750, "relayops", "relayops"),
    Directory("/var/log/relayops", 0o750, "relayops", "relayops"),
)
# Debian packages every relay needs; Redis's when it runs one (wanted_packages).
PACKAGES: tuple[str, ...] = (
    "postfix",
    "opendkim",
    "opendkim-tools",
    "dovecot-imapd",
    "dovecot-lmtpd",  # notices into the customers' mailboxes (LMTP from Postfix)
    "python3",
    "python3-venv",
    "ca-certificates",
)
# Start order: what Postfix calls (milter, SASL, policy) runs before Postfix itself.
START_ORDER: tuple[str, ...] = (
    REDIS_SERVICE,
    SENTINEL_SERVICE,
    Daemon.OPENDKIM.value,
    Daemon.DOVECOT.value,
    Daemon.POLICYD.value,
    # The output instances' transport_maps ask the socketmap: it runs before any reload.
    BACKOFF_SERVE,
    BACKOFF_WATCH,
    Daemon.POSTFIX.value,
    Daemon.MAILLOG.value,  # reads what Postfix logs; writes to the store the daemon reads
)
# Where each service's init script keeps its main PID (Debian's and ours): without
# systemd, "running" is `kill -0` of that PID, as the scripts' own `status` decides it.
PIDFILES: Mapping[str, str] = {
    REDIS_SERVICE: "/run/redis/redis-server.pid",
    SENTINEL_SERVICE: "/run/relayops-sentinel/sentinel.pid",
    Daemon.OPENDKIM.value: "/run/opendkim/opendkim.pid",
    Daemon.DOVECOT.value: "/run/dovecot/master.pid",
    Daemon.POLICYD.value: "/run/relayops/policyd.pid",
    BACKOFF_SERVE: "/run/relayops/backoff-serve.pid",
    BACKOFF_WATCH: "/run/relayops/backoff-watch.pid",
    Daemon.POSTFIX.value: "/var/spool/postfix/pid/master.pid",
    Daemon.MAILLOG.value: "/run/relayops/maillog.pid",
}


def start_position(service: str) -> int:
    """A service's rank in START_ORDER; Postfix output instances right after `postfix`,
    in a stable order of their own (a pyinfra loop position, deploy/ordering.py)."""
    if service.startswith(INSTANCE_SERVICE_PREFIX):
        return ((START_ORDER.index(Daemon.POSTFIX.value) + 1) << 32) | zlib.crc32(service.encode())
    return START_ORDER.index(service) << 32


# Configuration checks run before a service (re)starts or reloads; a failure stops the host.
# With `-c`: under the instances' multi_instance_wrapper, a failing `postfix check` (or
# `postmulti -p check`, or `-x postfix check`) exits 1 without a word; `postfix -c DIR
# check` checks that instance alone and prints why (seen in the lab).
CHECKS: Mapping[str, str] = {
    Daemon.POSTFIX.value: "postfix -c /etc/postfix check",
    Daemon.OPENDKIM.value: "opendkim -n",
    Daemon.DOVECOT.value: "doveconf -n >/dev/null",
}


def wanted_packages(services: Sequence[str]) -> list[str]:
    """The packages a host with these services needs (Sentinel runs from redis-server's)."""
    return [*PACKAGES, "redis-server"] if REDIS_SERVICE in services else list(PACKAGES)


@dataclass(frozen=True)
class HostPlan:
    config: HostConfig
    wanted: list[Wanted]
    directories: list[Directory]
    services: list[str]  # in start order
    reload_extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def state_paths(self) -> list[str]:
        """Every path whose state the deploy compares: files, map indexes, directories."""
        paths = [w.path for w in self.wanted]
        paths += [map_db(f) for f in self.config.files if f.map_command is not None]
        paths += [d.path for d in self.directories]
        return sorted(set(paths))


def host_plan(
    config: HostConfig,
    *,
    secrets: Mapping[str, bytes],
    certificate: Pem | None,
    service_files: Sequence[Wanted],
    redis_files: Sequence[Wanted] | None,
    ca: bytes | None = None,
    sentinel_files: Sequence[Wanted] = (),
) -> HostPlan:
    """Assemble the host's wanted state; `secrets` maps SecretFile.source to plaintext.

    `redis_files`: the host's Redis data node, if it runs one; `sentinel_files`: its
    sentinel's, if it runs one too (the TLS files then serve both).
    """
    wanted = wanted_files(config) + wanted_secrets(config, secrets) + list(service_files)
    reload_extra: dict[str, tuple[str, ...]] = {}
    if certificate is not None:
        wanted += [
            Wanted(tls.CERT_PATH, certificate.cert, 0o644, "root", "root"),
            Wanted(tls.KEY_PATH, certificate.key, 0o600, "root", "root", secret=True),
        ]
        both = (Daemon.POSTFIX.value, Daemon.DOVECOT.value)
        reload_extra = {tls.CERT_PATH: both, tls.KEY_PATH: both}
    services = [s for s in START_ORDER if s not in (REDIS_SERVICE, SENTINEL_SERVICE)]
    output_instances = sorted(
        {str(f.reload) for f in config.files if str(f.reload).startswith(INSTANCE_SERVICE_PREFIX)}
    )
    if ca is not None:  # what the daemon verifies a rediss:// Redis with (?ca=)
        wanted.append(Wanted(tls.CA_PATH, ca, 0o644, "root", "root"))
    directories = list(DEPLOY_DIRECTORIES) + list(config.directories)
    if redis_files is not None:
        wanted += redis_files
        reload_extra |= {w.path: (REDIS_SERVICE,) for w in redis_files}
        services = [s for s in START_ORDER if s != SENTINEL_SERVICE]
        if any(w.path.startswith(REDIS_TLS_DIR + "/") for w in redis_files):
            directories.append(Directory(REDIS_TLS_DIR, 0o750, "redis", "redis"))
    if sentinel_files:
        wanted += sentinel_files
        reload_extra |= {w.path: (SENTINEL_SERVICE,) for w in sentinel_files}
        tls_files = [w.path for w in wanted if w.path.startswith(REDIS_TLS_DIR + "/")]
        reload_extra |= {path: (REDIS_SERVICE, SENTINEL_SERVICE) for path in tls_files}
        services = list(START_ORDER)
    services += output_instances
    return HostPlan(config, wanted, directories, services, reload_extra)
