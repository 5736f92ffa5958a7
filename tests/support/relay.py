"""Private, loopback-only Postfix, Dovecot and policy daemon instances built from a
compiled host (for the `real` tests). Nothing leaves the machine: every smtp(8)
transport is deferred and DNS lookups are disabled.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from relayops.compile import HostConfig, compile_inventory
from relayops.compile.postfix import transports
from relayops.compile.toolcheck import stage
from relayops.hostlayout import DKIM_MILTER_POSTFIX as DKIM_MILTER
from relayops.hostlayout import MESSAGE_MILTER_POSTFIX as MESSAGE_MILTER
from relayops.hostlayout import POLICY_SERVICE
from relayops.loader import load_repo
from relayops.model import RelayHost, Repo
from support.processes import free_port, run, stop_pid, stop_postfix, stop_process, wait_port


@dataclass(frozen=True)
class Relay:
    root: Path
    smtp: int
    submission: int
    submissions: int
    imaps: int
    policy: int
    milter: int  # OpenDKIM
    message_milter: int  # relayops policyd --milter


TRACE_KEY = b"relay-test-trace-key"  # the service key the instance's policyd stamps with


def _edit(path: Path, pattern: str, replacement: str, *, count: int = 1) -> None:
    text = path.read_text()
    new, n = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if n < count:
        raise AssertionError(f"{path}: {pattern!r} matched {n} times")
    path.write_text(new)


@contextlib.contextmanager
def relay_instance(repo: Repo, host: RelayHost, config: HostConfig, root: Path) -> Iterator[Relay]:
    """Stage `config` in `root` and run Postfix + Dovecot + relayops policyd on loopback."""
    root.chmod(0o755)  # postfix and dovecot users traverse it
    stage(config, root)
    ports = Relay(root, *(free_port() for _ in range(7)))
    postfix_dir = root / "etc/postfix"
    main_cf = postfix_dir / "main.cf"
    _edit(main_cf, re.escape(POLICY_SERVICE), f"inet:127.0.0.1:{ports.policy}", count=4)
    # The compiled relayops_milters, order kept: the message checks, then OpenDKIM;
    # OpenDKIM also on port 25 from 127.0.0.1 (smtpd_milter_maps) and non-SMTP mail.
    _edit(main_cf, re.escape(MESSAGE_MILTER), f"inet:127.0.0.1:{ports.message_milter}")
    _edit(main_cf, re.escape(DKIM_MILTER), f"inet:127.0.0.1:{ports.milter}", count=3)
    deferred = ",".join(["smtp", "relay", *(t.name for t in transports(host, repo.throttling))])
    run(
        "postconf", "-c", str(postfix_dir), "-e",
        "inet_interfaces=127.0.0.1",
        f"maillog_file={root}/maillog",
        f"maillog_file_prefixes={root}",
        "smtp_dns_support_level=disabled",
        # Queue, never deliver: no test traffic leaves loopback.
        f"defer_transports={deferred}",
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
        run("opendkim", "-x", str(opendkim_conf))
        started_opendkim = True
        wait_port(ports.milter, what="opendkim")
        run("postfix", "-c", str(postfix_dir), "start")
        started_postfix = True
        wait_port(ports.submission, what="postfix")
        run("dovecot", "-c", str(dovecot_conf))
        started_dovecot = True
        wait_port(ports.imaps, what="dovecot")
        trace_key = root / "etc/relayops/trace.key"
        trace_key.write_bytes(TRACE_KEY + b"\n")
        policyd = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "relayops"), "policyd",
                "--rules", str(root / "etc/relayops/policy.json"),
                "--listen", f"127.0.0.1:{ports.policy}",
                "--milter", f"127.0.0.1:{ports.message_milter}",
                "--store", f"sqlite:{root}/policyd.sqlite",
                "--trace-key-file", str(trace_key),
                # Notices go through this Postfix, as on a host: contact addresses are
                # queued (deferred), the customer's mailbox copy goes over LMTP to Dovecot.
                "--notify-smtp", f"127.0.0.1:{ports.smtp}",
            ],
            stdout=(root / "policyd.log").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(policyd)
        wait_port(ports.policy, what="relayops policyd")
        wait_port(ports.message_milter, what="relayops policyd --milter")
        yield ports
    finally:
        for proc in processes:
            stop_process(proc)
        if started_dovecot:
            stop_pid(root / "run/dovecot/master.pid")
        if started_opendkim:
            stop_pid(root / "run/opendkim/opendkim.pid")
        if started_postfix:
            stop_postfix("postfix", postfix_dir, root / "var/spool/postfix")


GOLDEN = Path(__file__).resolve().parents[1] / "golden"
NO_VERIFY = ssl._create_unverified_context()  # the instance has a throw-away self-signed cert


def golden_relay(case: str, overlay: Mapping[str, bytes] | None = None) -> Iterator[Relay]:
    """A relay instance of golden case `case`'s production host, its files changed by
    `overlay` (path in the repository: content) if given; for a module fixture."""
    # Not pytest's tmp_path: its parents are 0700 and the postfix user must traverse them.
    tmp = Path(tempfile.mkdtemp(prefix="relayops-relay-"))
    loaded = load_repo(GOLDEN / case / "repo", today=date(2026, 11, 23), overlay=overlay)
    repo = loaded.repo
    assert repo is not None, loaded
    inventory = repo.inventories["production"]
    host = inventory.hosts[0]
    config = compile_inventory(repo, inventory)[host.name]
    try:
        with relay_instance(repo, host, config, tmp) as relay:
            yield relay
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def submission(relay: Relay, login: str | None = None) -> smtplib.SMTP:
    """A client on the relay's submission port after STARTTLS, logged in as `login`
    (password `pw-LOGIN`, the golden repositories' lab logins) when given."""
    client = smtplib.SMTP("127.0.0.1", relay.submission, timeout=20)
    client.ehlo("client.example")
    client.starttls(context=NO_VERIFY)
    client.ehlo("client.example")
    if login is not None:
        client.login(login, f"pw-{login}")
    return client
