"""Private, loopback-only Postfix, Dovecot and policy daemon instances built from a
compiled host (for the `real` tests). Nothing leaves the machine: every smtp(8)
transport is deferred and DNS lookups are disabled.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from relayops.compile import HostConfig
from relayops.compile.postfix import DKIM_MILTER, POLICY_SERVICE, transports
from relayops.compile.toolcheck import stage
from relayops.model import RelayHost, Repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, *, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what or 'service'} did not listen on 127.0.0.1:{port}")


@dataclass(frozen=True)
class Relay:
    root: Path
    smtp: int
    submission: int
    submissions: int
    imaps: int
    policy: int
    milter: int


def _edit(path: Path, pattern: str, replacement: str, *, count: int = 1) -> None:
    text = path.read_text()
    new, n = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if n < count:
        raise AssertionError(f"{path}: {pattern!r} matched {n} times")
    path.write_text(new)


def _run(*args: str) -> None:
    # Output to a file, not a pipe: daemons keep inherited pipes open after forking.
    with tempfile.TemporaryFile() as output:
        proc = subprocess.run(args, check=False, stdout=output, stderr=output, timeout=60)
        if proc.returncode != 0:
            output.seek(0)
            text = output.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(args)} failed: {text}")


def _stop_pid(pid_file: Path, *, timeout: float = 15.0) -> None:
    """SIGTERM the daemon whose pid the file holds and wait until it is gone."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def relay_instance(repo: Repo, host: RelayHost, config: HostConfig, root: Path) -> Iterator[Relay]:
    """Stage `config` in `root` and run Postfix + Dovecot + relayops policyd on loopback."""
    root.chmod(0o755)  # postfix and dovecot users traverse it
    stage(config, root)
    ports = Relay(root, *(free_port() for _ in range(6)))
    postfix_dir = root / "etc/postfix"
    main_cf = postfix_dir / "main.cf"
    _edit(main_cf, re.escape(POLICY_SERVICE), f"inet:127.0.0.1:{ports.policy}", count=2)
    # submission, port 25 from 127.0.0.1 (smtpd_milter_maps) and non-SMTP mail
    _edit(main_cf, re.escape(DKIM_MILTER), f"inet:127.0.0.1:{ports.milter}", count=3)
    deferred = ",".join(["smtp", "relay", *(t.name for t in transports(host, repo.throttling))])
    _run(
        "postconf", "-c", str(postfix_dir), "-e",
        "inet_interfaces=127.0.0.1",
        f"maillog_file={root}/maillog",
        f"maillog_file_prefixes={root}",
        "smtp_dns_support_level=disabled",
        # Queue, never deliver: no test traffic leaves loopback.
        f"defer_transports={deferred}",
        f"relayops_milters=inet:127.0.0.1:{ports.milter}",
        # Tests provoke refusals on purpose; production keeps the punitive delays.
        "smtpd_error_sleep_time=0s",
    )  # fmt: skip
    shutil.chown(root / "var/lib/postfix", "postfix", "postfix")
    master_cf = postfix_dir / "master.cf"
    _edit(master_cf, r"^smtp(\s+)inet", f"127.0.0.1:{ports.smtp}\\1inet")
    _edit(master_cf, r"^submission inet", f"127.0.0.1:{ports.submission} inet")
    _edit(master_cf, r"^submissions inet", f"127.0.0.1:{ports.submissions} inet")

    dovecot_conf = root / "etc/dovecot/dovecot.conf"
    _edit(dovecot_conf, r"^listen = \*", "listen = 127.0.0.1")
    _edit(dovecot_conf, r"port = 993", f"port = {ports.imaps}")
    # No vmail user on a test machine: mailboxes belong to dovecot there.
    _edit(dovecot_conf, r"(uid|gid)( ?= ?)vmail\b", r"\1\2dovecot", count=4)
    _edit(dovecot_conf, r"^log_path = syslog", f"log_path = {root}/dovecot.log")
    with dovecot_conf.open("a") as handle:
        handle.write(
            f"base_dir = {root}/run/dovecot\nstate_dir = {root}/var/lib/dovecot\n"
            "auth_failure_delay = 0\n"
        )
    (root / "var/lib/dovecot").mkdir(parents=True, exist_ok=True)
    (root / "var/vmail").mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "var/vmail", "dovecot", "dovecot")

    opendkim_conf = root / "etc/opendkim.conf"
    _edit(opendkim_conf, r"^Socket\s+\S+", f"Socket\t\t\tinet:{ports.milter}@127.0.0.1")
    _edit(opendkim_conf, r"^Syslog\s+yes", "Syslog\t\t\tno")
    with opendkim_conf.open("a") as handle:
        # The scratch keys sit below /tmp, which is world-writable: OpenDKIM would
        # refuse them as unsafe (on a host they are under /etc/opendkim/keys, 0750).
        handle.write("RequireSafeKeys\t\tfalse\n")
    (root / "run/opendkim").mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "run/opendkim", "opendkim", "opendkim")
    for secret in config.secrets:  # stand-in keys written by stage(), readable by opendkim
        shutil.chown(root / secret.path.lstrip("/"), "opendkim", "opendkim")

    processes: list[subprocess.Popen[bytes]] = []
    started_opendkim = False
    started_postfix = started_dovecot = False
    try:
        _run("opendkim", "-x", str(opendkim_conf))
        started_opendkim = True
        wait_port(ports.milter, what="opendkim")
        _run("postfix", "-c", str(postfix_dir), "start")
        started_postfix = True
        wait_port(ports.submission, what="postfix")
        _run("dovecot", "-c", str(dovecot_conf))
        started_dovecot = True
        wait_port(ports.imaps, what="dovecot")
        policyd = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "relayops"), "policyd",
                "--rules", str(root / "etc/relayops/policy.json"),
                "--listen", f"127.0.0.1:{ports.policy}",
                "--store", f"sqlite:{root}/policyd.sqlite",
            ],
            stdout=(root / "policyd.log").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(policyd)
        wait_port(ports.policy, what="relayops policyd")
        yield ports
    finally:
        for proc in processes:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if started_dovecot:
            _stop_pid(root / "run/dovecot/master.pid")
        if started_opendkim:
            _stop_pid(root / "run/opendkim/opendkim.pid")
        if started_postfix:
            subprocess.run(["postfix", "-c", str(postfix_dir), "stop"], check=False,
                           capture_output=True, timeout=60)  # fmt: skip
