"""The destination host: a real Postfix accepting mail for any domain into one catch-all Maildir.

It stands for the receiving ISPs and for the customers' own mail servers (the
lab DNS points their MX at it). Tests read what arrived from the root
namespace, through the host's overlay root; virtual(8) adds `Delivered-To:`
with the envelope recipient, which tells the recipient domain. (Postfix forbids
`$1` substitution in virtual_mailbox_maps, so a Maildir per domain would need
every domain listed in advance.) It talks back as ISPs do: refusals, deferrals
and late bounces chosen by the recipient (`lab/receivers.py`), and complaint
reports about what it received (`complain`, `lab/arf.py`).
"""

from __future__ import annotations

import email
import email.policy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from relayops.certs import self_signed
from relayops.lab import state as lab_state
from relayops.lab.errors import LabNotUpError, LabTimeoutError
from relayops.lab.host import host_command
from relayops.lab.runner import Runner
from relayops.lab.topology import Topology

MAIL_BASE = "/var/mail/sink"  # inside the destination host
MAIL_UID = 65534  # nobody: virtual(8) refuses to deliver as root

MAIN_CF = """\
# managed by relayops lab: the destination host, accepting mail for every domain
compatibility_level = 3.6
myhostname = {fqdn}
mydestination =
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = /var/log/mail.log
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP relayops lab sink
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
message_size_limit = 52428800
virtual_mailbox_limit = 0
virtual_mailbox_domains = regexp:{mailbox_domains}
virtual_mailbox_base = {base}
virtual_mailbox_maps = static:{maildir}/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{uid}
smtpd_tls_cert_file = /etc/postfix/sink.crt
smtpd_tls_key_file = /etc/postfix/sink.key
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
"""
MAILDIR = "inbox"  # under MAIL_BASE


@dataclass(frozen=True)
class Arrived:
    """One message the destination host stored."""

    recipient: str  # the envelope recipient (Delivered-To)
    path: Path
    message: EmailMessage

    @property
    def domain(self) -> str:
        return self.recipient.rpartition("@")[2].lower()


class Sink:
    """The destination host of one running lab."""

    def __init__(self, topo: Topology, runner: Runner | None = None) -> None:
        self.topo = topo
        self.runner = runner or Runner()
        self.root = topo.root(topo.sink)

    @classmethod
    def current(cls, index: int = 0) -> Sink:
        found = lab_state.load(index)
        if found is None:
            raise LabNotUpError("lab sink")
        return cls(found.topology)

    @property
    def maildir(self) -> Path:
        """Root-namespace path of the catch-all Maildir (`new/`, `cur/`, `tmp/`)."""
        return self.root / MAIL_BASE.lstrip("/") / MAILDIR

    def configure(self) -> None:
        postfix = self.root / "etc/postfix"
        (postfix / "main.cf").write_text(
            MAIN_CF.format(fqdn=self.topo.sink.fqdn, base=MAIL_BASE, uid=MAIL_UID, maildir=MAILDIR)
        )
        cert, key = self_signed(self.topo.sink.fqdn, days=90)
        (postfix / "sink.crt").write_bytes(cert)
        (postfix / "sink.key").write_bytes(key)
        (postfix / "sink.key").chmod(0o600)
        base = self.maildir.parent
        base.mkdir(parents=True, exist_ok=True)
        os.chown(base, MAIL_UID, MAIL_UID)

    def start(self) -> None:
        self.runner.run(host_command(self.topo, self.topo.sink, ["/etc/init.d/postfix", "start"]))

    def messages(self, domain: str | None = None) -> list[Arrived]:
        """Every stored message (for recipients in `domain` when given), oldest first."""
        found: list[tuple[float, str, Arrived]] = []
        for sub in ("new", "cur"):
            for path in (self.maildir / sub).glob("*"):
                parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                arrived = Arrived(str(parsed.get("Delivered-To", "")), path, parsed)
                if domain is None or arrived.domain == domain.lower():
                    found.append((path.stat().st_mtime, path.name, arrived))
        return [arrived for *_, arrived in sorted(found, key=lambda item: item[:2])]

    def clear(self) -> int:
        """Delete every stored message (a test's clean slate); return how many."""
        paths = [p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*")]
        for path in paths:
            path.unlink(missing_ok=True)
        return len(paths)

    def wait_for(self, predicate: Callable[[Arrived], bool], *, timeout: float = 30.0) -> Arrived:
        """The first stored message matching `predicate`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for arrived in self.messages():
                if predicate(arrived):
                    return arrived
            if time.monotonic() > deadline:
                raise LabTimeoutError(
                    f"no matching message reached {self.maildir} within {timeout} s; "
                    f"see {self.root / 'var/log/mail.log'}"
                )
            time.sleep(0.1)
