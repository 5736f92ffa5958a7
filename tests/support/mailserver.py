"""A real private Postfix instance (plus Dovecot for SASL and IMAPS) on loopback.

One Postfix runs several smtpd listeners: a well-configured relay on GOOD_IP and, on
BAD_IP, one listener per misconfiguration (open relay, AUTH before STARTTLS with a
wrong-name certificate, an expired certificate, TLS 1.0 allowed); Dovecot serves IMAPS
on GOOD_IP and, with a self-signed certificate, on BAD_IP. Nothing is ever delivered:
every transport is `discard:` and the probes never send DATA.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support.certs import Issued, make_ca, make_leaf
from support.processes import (
    POSTFIX_INTERNAL_SERVICES,
    POSTFIX_PRIVATE_SETTINGS,
    cleanup_dir,
    free_port,
    require,
    run,
    stop_postfix,
    stop_process,
    tcp_open,
    wait_until,
    world_readable_tmpdir,
)

GOOD_IP, BAD_IP, SASL_IP = "127.0.0.2", "127.0.0.3", "127.0.0.1"
GOOD_HOST, BAD_HOST = "relay1.relay.test", "relay9.relay.test"
SIZE = 31457280
LOGIN, PASSWORD = "acme-app", "correct horse battery"
OWN_DOMAIN, FOREIGN_DOMAIN = "acme.test", "victim.test"

# bad listeners: name -> extra smtpd -o settings (cert files are filled in at start)
_SUBMISSION = (
    "-o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes "
    "-o smtpd_tls_auth_only=yes "
    "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject "
    "-o smtpd_sender_restrictions=reject_sender_login_mismatch"
)
_WRAPPER = "-o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes"


_GOOD_LISTENERS = ("smtp", "submission", "submissions")
_BAD_LISTENERS = ("open_relay", "open_relay_tls", "auth_before_tls", "expired", "tls10")


def _address(listener: str) -> str:
    return GOOD_IP if listener in _GOOD_LISTENERS else BAD_IP


@dataclass
class MailServer:
    directory: Path
    ca_file: Path
    ports: dict[str, int] = field(default_factory=dict)


def _main_cf(d: Path, sasl_port: int) -> str:
    settings = {
        **POSTFIX_PRIVATE_SETTINGS,
        "queue_directory": f"{d}/spool",
        "data_directory": f"{d}/lib",
        "myhostname": GOOD_HOST,
        # not the prober's address: the probes must be judged as an outsider's
        "mynetworks": "127.0.0.254/32",
        # master.cf binds explicit addresses; Postfix only accepts configured interface
        # addresses here, and lo carries 127.0.0.1 only (the rest of 127/8 is routed)
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "smtpd_peername_lookup": "no",
        "smtp_dns_support_level": "disabled",
        "default_transport": "discard:test instance delivers nothing",
        "relay_transport": "discard:test instance delivers nothing",
        "maillog_file": f"{d}/log/postfix.log",
        "maillog_file_prefixes": f"{d}/log",
        "message_size_limit": str(SIZE),
        "smtpd_tls_cert_file": f"{d}/pki/good.crt",
        "smtpd_tls_key_file": f"{d}/pki/good.key",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_protocols": ">=TLSv1.2",
        "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
        "smtpd_relay_restrictions": (
            "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
        ),
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": f"inet:{SASL_IP}:{sasl_port}",
        "smtpd_sender_login_maps": f"inline:{{ @{OWN_DOMAIN}={LOGIN} }}",
        "biff": "no",
    }
    return "".join(f"{k} = {v}\n" for k, v in settings.items())


def _master_cf(d: Path, ports: dict[str, int]) -> str:
    def listener(ip: str, name: str, options: str) -> str:
        return f"{ip}:{ports[name]} inet n - n - - smtpd {options}\n"

    def cert(stem: str) -> str:
        pki = d / "pki"
        return f"-o smtpd_tls_cert_file={pki}/{stem}.crt -o smtpd_tls_key_file={pki}/{stem}.key"

    return (
        listener(GOOD_IP, "smtp", "")
        + listener(GOOD_IP, "submission", _SUBMISSION)
        + listener(GOOD_IP, "submissions", _WRAPPER)
        # smtpd refuses to start when neither list has a working reject, and a
        # literal `permit` ends its search; a client map answering OK for everyone is
        # how such an open relay really happens
        + listener(
            BAD_IP,
            "open_relay",
            "-o smtpd_relay_restrictions=permit "
            "-o smtpd_recipient_restrictions=check_client_access,static:OK,"
            "reject_unauth_destination",
        )
        # the same mistake on the implicit-TLS port (465 has its own -o overrides)
        + listener(
            BAD_IP,
            "open_relay_tls",
            _WRAPPER + " -o smtpd_relay_restrictions=permit "
            "-o smtpd_recipient_restrictions=check_client_access,static:OK,"
            "reject_unauth_destination",
        )
        + listener(
            BAD_IP,
            "auth_before_tls",
            "-o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=no " + cert("wrongname"),
        )
        + listener(BAD_IP, "expired", _WRAPPER + " " + cert("expired"))
        + listener(
            BAD_IP,
            "tls10",
            "-o smtpd_tls_protocols=>=TLSv1 -o smtpd_tls_mandatory_protocols=>=TLSv1 "
            "-o tls_medium_cipherlist=DEFAULT:@SECLEVEL=0 " + cert("bad"),
        )
        + POSTFIX_INTERNAL_SERVICES
    )


def _dovecot_conf(d: Path, sasl_port: int, imaps_port: int, bad_imaps_port: int) -> str:
    pki = d.parent / "pki"
    return f"""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = {GOOD_IP}
ssl = required
ssl_cert = <{pki}/good.crt
ssl_key = <{pki}/good.key
ssl_min_protocol = TLSv1.2
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{d}/mail/%u
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = {GOOD_IP}
    port = {imaps_port}
    ssl = yes
  }}
  inet_listener imaps_self_signed {{
    address = {BAD_IP}
    port = {bad_imaps_port}
    ssl = yes
  }}
}}
local {BAD_IP} {{
  ssl_cert = <{pki}/selfsigned.crt
  ssl_key = <{pki}/selfsigned.key
}}
service auth {{
  inet_listener {{
    address = {SASL_IP}
    port = {sasl_port}
  }}
}}
"""


def _write_pki(d: Path) -> Issued:
    ca = make_ca()
    (d / "ca.pem").write_bytes(ca.cert_pem())
    make_leaf([GOOD_HOST, f"mx.{GOOD_HOST.split('.', 1)[1]}"], issuer=ca).write(d, "good")
    make_leaf([BAD_HOST], issuer=ca).write(d, "bad")
    make_leaf([BAD_HOST], issuer=ca, days_left=-2).write(d, "expired")
    make_leaf(["other.relay.test"], issuer=ca).write(d, "wrongname")
    make_leaf([BAD_HOST], issuer=None).write(d, "selfsigned")
    return ca


@contextmanager
def mail_server() -> Iterator[MailServer]:
    postfix = require("postfix", "postfix")
    dovecot = require("dovecot", "dovecot-core dovecot-imapd")
    d = world_readable_tmpdir("relayops-mail-")
    ports = {n: free_port(_address(n)) for n in (*_GOOD_LISTENERS, *_BAD_LISTENERS)}
    ports["imaps"] = free_port(GOOD_IP)
    ports["imaps_self_signed"] = free_port(BAD_IP)
    sasl_port = free_port(SASL_IP)
    server = MailServer(d, d / "pki" / "ca.pem", ports)
    for sub in ("pki", "postfix", "spool", "lib", "log", "dovecot/run", "dovecot/state"):
        (d / sub).mkdir(parents=True, mode=0o755)
    shutil.chown(d / "lib", "postfix")
    _write_pki(d / "pki")
    dc = d / "dovecot"
    (dc / "users").write_text(f"{LOGIN}:{{PLAIN}}{PASSWORD}\n")
    (dc / "dovecot.conf").write_text(
        _dovecot_conf(dc, sasl_port, ports["imaps"], ports["imaps_self_signed"])
    )
    (d / "postfix" / "main.cf").write_text(_main_cf(d, sasl_port))
    (d / "postfix" / "master.cf").write_text(_master_cf(d, ports))
    dove = subprocess.Popen(
        [dovecot, "-F", "-c", str(dc / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    started = False
    try:
        wait_until(
            lambda: (
                tcp_open(SASL_IP, sasl_port)
                and tcp_open(GOOD_IP, ports["imaps"])
                and tcp_open(BAD_IP, ports["imaps_self_signed"])
            ),
            "dovecot",
            dc / "dovecot.log",
        )
        run(postfix, "-c", str(d / "postfix"), "start", log=d / "log" / "postfix.log")
        started = True
        wait_until(
            lambda: all(tcp_open(_address(n), p) for n, p in ports.items() if "imaps" not in n),
            "postfix",
            d / "log" / "postfix.log",
        )
        yield server
    finally:
        if started:
            stop_postfix(postfix, d / "postfix", d / "spool")
        stop_process(dove)
        cleanup_dir(d)
