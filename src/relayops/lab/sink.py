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

import base64
import email
import email.policy
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import dns.resolver

from relayops.certs import self_signed
from relayops.lab import arf, receivers
from relayops.lab import state as lab_state
from relayops.lab.errors import LabNotUpError, LabTimeoutError
from relayops.lab.host import host_command
from relayops.lab.runner import Runner
from relayops.lab.topology import RELAY_DOMAIN, Topology

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
MAIL_LOG = "/var/log/mail.log"  # inside the destination host
REPORTER = "ISP Lab Feedback Loop <fbl-reports@isp.lab>"  # From: of complaint reports
REPORT_SENDER = "fbl-reports@isp.lab"  # their envelope sender
# Runs inside the sink (its namespace, its python3): one SMTP transaction, every reply
# printed as JSON, so the caller sees exactly what the relay answered.
_SEND = """\
import base64, json, smtplib, sys
host, helo, sender, rcpt = sys.argv[1:5]
data = base64.b64decode(sys.stdin.read())
out = {}
with smtplib.SMTP(host, 25, local_hostname=helo, timeout=30) as smtp:
    out["ehlo"] = list(smtp.ehlo())
    out["mail"] = list(smtp.mail(sender))
    out["rcpt"] = list(smtp.rcpt(rcpt))
    if out["rcpt"][0] == 250:
        out["data"] = list(smtp.data(data))
print(json.dumps({k: [v[0], v[1].decode("utf-8", "replace")] for k, v in out.items()}))
"""


@dataclass(frozen=True)
class SmtpReplies:
    """What a relay answered to one SMTP transaction from the sink: (code, text) per step."""

    host: str  # the MX host name the lab DNS gave
    address: str
    mail: tuple[int, str]
    rcpt: tuple[int, str]
    data: tuple[int, str] | None  # None when RCPT was refused


def mx_address(domain: str, nameserver: str, *, timeout: float = 5.0) -> tuple[str, str]:
    """(host, IPv4 address) of the most preferred MX of `domain`, as `nameserver` says."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nameserver]
    resolver.lifetime = timeout
    answer = sorted(resolver.resolve(domain, "MX"), key=lambda r: (r.preference, str(r.exchange)))
    host = str(answer[0].exchange).rstrip(".")
    address = str(resolver.resolve(host, "A")[0])
    return host, address


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

    def files(self) -> dict[str, str]:
        """The sink's Postfix files (path inside the host → text), tables included."""
        main_cf = MAIN_CF.format(
            fqdn=self.topo.sink.fqdn,
            base=MAIL_BASE,
            uid=MAIL_UID,
            maildir=MAILDIR,
            mailbox_domains=receivers.MAILBOX_DOMAINS,
        )
        return {
            "/etc/postfix/main.cf": main_cf + receivers.main_cf_lines(),
            receivers.RECIPIENT_TABLE: receivers.recipient_table(),
            receivers.SLOW_TABLE: receivers.slow_table(),
            receivers.RBL_REPLIES: receivers.rbl_replies(),
            receivers.TRANSPORT_TABLE: receivers.transport_table(),
            receivers.MAILBOX_DOMAINS: receivers.mailbox_domains_table(RELAY_DOMAIN),
        }

    def configure(self) -> bool:
        """Write the sink's configuration; True when a file changed (Postfix must reload).

        The deferral table starts empty and is kept as it is on a running lab: a test
        may have switched a deferral on.
        """
        changed = False
        for path, text in self.files().items():
            target = self.root / path.lstrip("/")
            if not target.exists() or target.read_text() != text:
                target.write_text(text)
                changed = True
        command = self.root / receivers.LATE_COMMAND.lstrip("/")
        if not command.exists() or command.read_text() != receivers.late_command():
            command.parent.mkdir(parents=True, exist_ok=True)
            command.write_text(receivers.late_command())
            command.chmod(0o755)
            changed = True
        master_cf = self.root / "etc/postfix/master.cf"
        if receivers.LATE_TRANSPORT not in master_cf.read_text():
            with master_cf.open("a") as handle:
                handle.write(receivers.master_cf_lines())
            changed = True
        deferrals = self.root / receivers.DEFERRAL_TABLE.lstrip("/")
        if not deferrals.exists():
            deferrals.write_text(receivers.deferral_table(()))
            changed = True
        postfix = self.root / "etc/postfix"
        if not (postfix / "sink.key").exists():
            cert, key = self_signed(self.topo.sink.fqdn, days=90)
            (postfix / "sink.crt").write_bytes(cert)
            (postfix / "sink.key").write_bytes(key)
            (postfix / "sink.key").chmod(0o600)
        base = self.maildir.parent
        base.mkdir(parents=True, exist_ok=True)
        os.chown(base, MAIL_UID, MAIL_UID)
        return changed

    def _run(self, script: str, *, input_text: str | None = None) -> str:
        argv = host_command(self.topo, self.topo.sink, ["/bin/sh", "-c", script])
        return self.runner.run(argv, input_text=input_text).stdout

    def start(self) -> None:
        self._run(f"postmap {receivers.DEFERRAL_TABLE} && exec /etc/init.d/postfix start")

    def refresh(self) -> bool:
        """Bring a running sink's configuration up to date (a lab made by an older relayops);
        True when Postfix was reloaded."""
        if not self.configure():
            return False
        self._run(f"postmap {receivers.DEFERRAL_TABLE} && postfix reload")
        return True

    def defer_volume(self, domains: tuple[str, ...]) -> None:
        """Answer every relay with Yahoo's TSS04 421 for `domains` (none: stop), at once.

        Rewrites a hash table and runs postmap: smtpd notices the new table itself and
        no Postfix restart or reload is needed (the sessions after the change use it).
        """
        path = self.root / receivers.DEFERRAL_TABLE.lstrip("/")
        db = path.with_name(path.name + ".db")
        before = db.stat().st_mtime if db.exists() else 0.0
        path.write_text(receivers.deferral_table(domains))
        self._run(f"postmap {receivers.DEFERRAL_TABLE}")
        # smtpd compares the table's mtime in whole seconds: two switches within one second
        # would look like no change to a process that opened the first one.
        if int(db.stat().st_mtime) <= int(before):
            os.utime(db, (before + 1, before + 1))

    def log(self) -> str:
        """The sink Postfix's log so far."""
        path = self.root / MAIL_LOG.lstrip("/")
        return path.read_text(errors="replace") if path.exists() else ""

    def complain(
        self,
        arrived: Arrived,
        *,
        to: str,
        style: arf.Style = "arf",
        now: datetime | None = None,
    ) -> SmtpReplies:
        """Report `arrived` as abuse to `to` (the service's feedback address), as receivers do.

        The report goes over SMTP from the sink's namespace to the most preferred MX the
        lab DNS names for `to`'s domain (a relay's port 25); the relay's replies come back.
        """
        when = now or datetime.now(UTC)
        facts = arf.reported(arrived.path.read_bytes())
        message_id = (
            f"<fbl.{when.strftime('%Y%m%d%H%M%S%f')}.{arrived.path.name}@{self.topo.sink.fqdn}>"
        )
        report = arf.complaint(
            facts, style=style, reporter=REPORTER, to=to, date=when, message_id=message_id
        )
        return self.send(report, to=to, sender=REPORT_SENDER)

    def send(self, data: bytes, *, to: str, sender: str) -> SmtpReplies:
        """One SMTP transaction from the sink's namespace to the most preferred MX of
        `to`'s domain (for the service domain: a relay's port 25), as a receiving ISP or
        a customer's own mail server sends: the relay's replies come back."""
        host, address = mx_address(to.rpartition("@")[2], self.topo.dns.address)
        argv = host_command(
            self.topo,
            self.topo.sink,
            ["python3", "-c", _SEND, address, self.topo.sink.fqdn, sender, to],
        )
        out = self.runner.run(argv, input_text=base64.b64encode(data).decode("ascii"))
        replies = json.loads(out.stdout)
        answered = replies.get("data")
        return SmtpReplies(
            host=host,
            address=address,
            mail=(int(replies["mail"][0]), str(replies["mail"][1])),
            rcpt=(int(replies["rcpt"][0]), str(replies["rcpt"][1])),
            data=(int(answered[0]), str(answered[1])) if answered else None,
        )

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
