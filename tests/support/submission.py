"""A loopback submission relay: Dovecot SASL, `relayops policyd --milter`, private Postfixes.

One Dovecot (passwd-file, PLAIN passwords) and one policy daemon, which serves both the
policy protocol and the message-checking milter, are shared by any number of private
Postfix instances (`postfix -c DIR`), each on its own loopback port, with or without the
milter in `smtpd_milters` — the tests and bench/milter/ compare them side by side.
Accepted mail goes to an SMTP sink, or is discarded (`relay_port=None`).
"""

from __future__ import annotations

import contextlib
import shutil
import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.policyd import Daemon, write_rules
from support.processes import (
    POSTFIX_INTERNAL_SERVICES,
    POSTFIX_PRIVATE_SETTINGS,
    free_port,
    require,
    run,
    stop_pid,
    stop_postfix,
    wait_port,
)

_DOVECOT_CONF = """\
base_dir = {root}/dovecot-run
state_dir = {root}/dovecot-state
log_path = {root}/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 1M
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {root}/dovecot-auth {{
    mode = 0666
  }}
}}
"""


def _main_cf(
    root: Path, services: Services, *, milter: bool, dkim: bool, relay_port: int | None
) -> str:
    assert not dkim or services.opendkim is not None, "start services() with dkim_domain"
    settings = {
        **POSTFIX_PRIVATE_SETTINGS,
        "queue_directory": f"{root}/queue",
        "data_directory": f"{root}/data",
        "maillog_file": f"{root}/postfix.log",
        "maillog_file_prefixes": str(root),
        "myhostname": "relay.test",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.1/32",
        "smtp_tls_security_level": "none",
        "smtpd_tls_security_level": "none",
        "smtp_dns_support_level": "disabled",
        "smtpd_peername_lookup": "no",
        "smtpd_error_sleep_time": "0s",
        # The test client is on an interface address, which Postfix would treat as a
        # local one and complete (From:, Date: added); a customer's client is remote.
        "local_header_rewrite_clients": "",
        "message_size_limit": "52428800",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": f"{services.root}/dovecot-auth",
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
        "smtpd_recipient_restrictions": f"check_policy_service inet:127.0.0.1:{services.policy}",
        "smtpd_end_of_data_restrictions": (
            f"check_policy_service inet:127.0.0.1:{services.policy}"
        ),
        # As relayops' main.cf: no milter answer, no mail (it waits at the client).
        "milter_default_action": "tempfail",
        # The relay's order: the message checks, then the signer (compile/postfix.py).
        "smtpd_milters": ", ".join(
            [f"inet:127.0.0.1:{services.milter}"] * milter
            + [f"inet:127.0.0.1:{services.opendkim}"] * dkim
        ),
    }
    if relay_port is None:
        settings["default_transport"] = "discard:bench"
    else:
        settings["relayhost"] = f"[127.0.0.1]:{relay_port}"
    return "".join(f"{k} = {v}\n" for k, v in settings.items())


@dataclass
class Services:
    """Dovecot SASL and the policy daemon (policy + milter listeners) on loopback."""

    root: Path
    daemon: Daemon
    passwords: dict[str, str]
    opendkim: int | None = None  # OpenDKIM's port when started with dkim_domain

    @property
    def policy(self) -> int:
        return self.daemon.port

    @property
    def milter(self) -> int:
        port = self.daemon.milter_port
        assert port is not None
        return port


@dataclass
class Submission:
    """One private Postfix's smtpd port; `smtp(login)` is an authenticated client."""

    root: Path
    port: int
    passwords: dict[str, str]

    def smtp(self, login: str, timeout: float = 20) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=timeout)
        client.ehlo("customer.example")
        client.login(login, self.passwords[login])
        return client

    def log(self) -> str:
        path = self.root / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else ""


_OPENDKIM_CONF = """\
Syslog			no
Mode			s
Canonicalization	relaxed/simple
SignatureAlgorithm	rsa-sha256
OversignHeaders		From
SignHeaders		*,+List-Unsubscribe-Post
Socket			inet:{port}@127.0.0.1
PidFile			{root}/opendkim.pid
UserID			opendkim
KeyTable		file:{root}/KeyTable
SigningTable		refile:{root}/SigningTable
RequireSafeKeys		false
"""


def _start_opendkim(root: Path, domain: str) -> int:
    """OpenDKIM signing `domain` with a fresh 2048-bit key (as the relays run it)."""
    require("opendkim", "opendkim")
    run(require("opendkim-genkey", "opendkim-tools"), "-D", str(root), "-d", domain, "-s", "k")
    shutil.chown(root / "k.private", "opendkim", "opendkim")
    (root / "KeyTable").write_text(f"k._domainkey.{domain} {domain}:k:{root}/k.private\n")
    (root / "SigningTable").write_text(f"*@{domain} k._domainkey.{domain}\n")
    port = free_port()
    (root / "opendkim.conf").write_text(_OPENDKIM_CONF.format(port=port, root=root))
    run("opendkim", "-x", str(root / "opendkim.conf"))
    wait_port(port, what="opendkim")
    return port


@contextlib.contextmanager
def services(
    root: Path,
    rules: dict[str, Any],
    passwords: dict[str, str],
    *,
    dkim_domain: str | None = None,
    daemon_args: tuple[str, ...] = (),
) -> Iterator[Services]:
    """Start Dovecot and `relayops policyd --milter` (and OpenDKIM) under `root`."""
    require("dovecot", "dovecot-core")
    (root / "passwd").write_text(
        "".join(f"{user}:{{PLAIN}}{pw}::::::\n" for user, pw in passwords.items())
    )
    (root / "dovecot.conf").write_text(_DOVECOT_CONF.format(root=root))
    rules_path = write_rules(root / "policy.json", rules)
    daemon = Daemon(
        root,
        rules_path,
        f"sqlite:{root / 'counters.sqlite'}",
        *daemon_args,
        name="milter",
        milter=True,
    )
    started_dovecot = False
    dkim_dir = root / "opendkim"
    try:
        run("dovecot", "-c", str(root / "dovecot.conf"))
        started_dovecot = True
        daemon.start()
        deadline = time.monotonic() + 10
        while not (root / "dovecot-auth").exists():
            assert time.monotonic() < deadline, (root / "dovecot.log").read_text()
            time.sleep(0.05)
        opendkim = None
        if dkim_domain is not None:
            dkim_dir.mkdir(mode=0o755)
            shutil.chown(dkim_dir, "opendkim", "opendkim")
            opendkim = _start_opendkim(dkim_dir, dkim_domain)
        yield Services(root, daemon, passwords, opendkim)
    finally:
        stop_pid(dkim_dir / "opendkim.pid")
        if daemon.proc is not None:
            daemon.stop()
        if started_dovecot:
            with contextlib.suppress(Exception):
                run("doveadm", "-c", str(root / "dovecot.conf"), "stop")


@contextlib.contextmanager
def postfix(
    root: Path, shared: Services, *, milter: bool, relay_port: int | None, dkim: bool = False
) -> Iterator[Submission]:
    """A private Postfix under `root` whose port-N smtpd submits through `shared`."""
    postfix_bin = require("postfix", "postfix")
    root.mkdir(mode=0o755, exist_ok=True)
    conf = root / "postfix"
    conf.mkdir()
    (root / "queue").mkdir()
    (root / "data").mkdir()
    shutil.chown(root / "data", "postfix", "postfix")
    port = free_port()
    (conf / "main.cf").write_text(
        _main_cf(root, shared, milter=milter, dkim=dkim, relay_port=relay_port)
    )
    (conf / "master.cf").write_text(
        f"127.0.0.1:{port} inet n - n - - smtpd\n" + POSTFIX_INTERNAL_SERVICES
    )
    started = False
    try:
        run(postfix_bin, "-c", str(conf), "start", log=root / "postfix.log")
        started = True
        wait_port(port, what="postfix")
        yield Submission(root, port, shared.passwords)
    finally:
        if started:
            stop_postfix(postfix_bin, conf, root / "queue")
