"""Production-shaped Redis on loopback: the deploy's rendered configs run by the real daemons.

Data nodes (redis-server) and sentinels (redis-sentinel) get exactly the files
`relayops.deploy.redis_conf` + deploys/templates/etc/redis/*.j2 render, plus the
few lines a test needs (its own dir, log file, no daemonizing).
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from relayops.compile.templates import Templates
from relayops.deploy import redis_conf as rc
from relayops.deploy.sentinel import SENTINEL_CONF
from relayops.labca import issue, new_ca
from support.policyd import free_port, wait_port

PASSWORDS = rc.RedisPasswords(
    policyd="daemon-secret-4f1c9e", replica="replica-secret-77ad", sentinel="sentinel-secret-c0de"
)


ADMIN = "test-admin"


def make_tls(directory: Path) -> rc.TlsFiles:
    """A CA and a certificate for redis.test and 127.0.0.1 (the lab CA's own functions)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca = new_ca(now, name="relayops test CA")
    pem = issue(ca, ["redis.test"], ["127.0.0.1"], now)
    files = rc.TlsFiles(
        str(directory / "cert.pem"), str(directory / "key.pem"), str(directory / "ca.pem")
    )
    Path(files.cert).write_bytes(pem.cert)
    Path(files.key).write_bytes(pem.key)
    Path(files.ca).write_bytes(ca.cert)
    return files


class Node:
    """One redis-server or redis-sentinel process with a rendered config."""

    def __init__(self, directory: Path, exe: str, port: int) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.exe = shutil.which(exe) or f"/usr/bin/{exe}"
        self.port = port
        self.config = self.dir / "node.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        self.proc = subprocess.Popen(
            [self.exe, str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port, proc=self.proc)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
            self.proc = None

    def log(self) -> str:
        path = self.dir / "node.log"
        return path.read_text(errors="replace") if path.exists() else ""


def data_node(
    directory: Path,
    *,
    tls: rc.TlsFiles | None = None,
    replica_of: tuple[str, int] | None = None,
    plain_port: bool = True,
) -> Node:
    """A data node; with `tls` and not `plain_port`, TLS only (``port 0``)."""
    port, tls_port = free_port(), free_port()
    node = Node(directory, "redis-server", tls_port if tls and not plain_port else port)
    node.tls_port = tls_port if tls else 0  # type: ignore[attr-defined]
    spec = rc.DataNode(
        bind=["127.0.0.1"],
        port=port if plain_port else 0,
        tls_port=tls_port if tls else 0,
        tls=tls,
        replica_of=replica_of,
        aclfile=str(directory / "users.acl"),
    )
    values = rc.data_node_values(spec, PASSWORDS)
    dropin = Templates().render("/etc/redis/relayops.conf", **values)
    # Plus a test-only administrator, to look at what the daemon did.
    users = [*rc.data_node_users(PASSWORDS), f"user {ADMIN} on >{ADMIN} ~* &* +@all"]
    (directory / "users.acl").write_text(rc.acl_file(users))
    (directory / "relayops.conf").write_bytes(dropin)
    node.config.write_text(
        f'dir {directory}\nlogfile {directory / "node.log"}\ndaemonize no\nsave ""\n'
        f"appendonly yes\ninclude {directory / 'relayops.conf'}\n"
    )
    return node


def sentinel_node(
    directory: Path,
    primary: tuple[str, int],
    *,
    down_after_ms: int,
    tls: rc.TlsFiles | None = None,
) -> Node:
    """A sentinel; with `tls`, TLS only (and TLS to the data nodes)."""
    port = free_port()
    node = Node(directory, "redis-sentinel", port)
    spec = rc.SentinelNode(
        bind=["127.0.0.1"],
        port=0 if tls else port,
        tls_port=port if tls else 0,
        tls=tls,
        primary=primary,
        quorum=2,
        down_after_ms=down_after_ms,
        failover_timeout_ms=5000,
        aclfile=str(directory / "users.acl"),
    )
    text = Templates().render(SENTINEL_CONF, **rc.sentinel_values(spec, PASSWORDS))
    (directory / "users.acl").write_text(rc.acl_file(rc.sentinel_users(PASSWORDS)))
    node.config.write_bytes(
        text + f"dir {directory}\nlogfile {directory / 'node.log'}\ndaemonize no\n".encode()
    )
    return node


def admin(port: int, tls: rc.TlsFiles | None = None) -> redis.Redis:
    """A redis-py client as the test-only administrator."""
    extra = {"ssl": True, "ssl_ca_certs": tls.ca} if tls else {}
    return redis.Redis(host="127.0.0.1", port=port, username=ADMIN, password=ADMIN, **extra)  # type: ignore[arg-type]


def counter(port: int, key: str) -> int:
    """A key's value read as the daemon's user (it may GET relayops:* keys)."""
    client = redis.Redis(
        host="127.0.0.1", port=port, username=rc.POLICYD_USER, password=PASSWORDS.policyd
    )
    with client:
        value = client.get(key)
    return int(value or 0)  # type: ignore[arg-type]


def wait_for(predicate: object, timeout: float, what: str) -> float:
    """Poll `predicate()` until true; the seconds it took."""
    t0 = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not after {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - t0
