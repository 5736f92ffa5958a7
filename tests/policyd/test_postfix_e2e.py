"""End to end: a private Postfix with Dovecot SASL asks the daemon; smtplib is the customer.

Postfix (Debian package) runs from its own config directory (`postfix -c DIR
start`) on a loopback high port with its own queue and data directories;
Dovecot (`dovecot -c FILE`) serves SASL from a passwd-file on a unix socket;
accepted mail is relayed to an SMTP sink, as are the daemon's notices.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import smtplib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.policyd import Daemon, rules_data, write_rules
from support.processes import (
    POSTFIX_INTERNAL_SERVICES,
    free_port,
    run,
    stop_postfix,
    wait_port,
)
from support.smtp_sink import SmtpSink

pytestmark = pytest.mark.real

PASSWORDS = {"acme-app": "acme-secret", "globex": "globex-secret"}
QUOTA = 5
MAX_BYTES = 20000


MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.test
mydomain = relay.test
myorigin = relay.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relayhost = [127.0.0.1]:{sink}
smtp_tls_security_level = none
smtpd_tls_security_level = none
message_size_limit = 52428800
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {root}/dovecot-auth
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:{policy}
smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:{policy}
"""

DOVECOT_CONF = """\
base_dir = {root}/dovecot-run
state_dir = {root}/dovecot-state
log_path = {root}/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
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


@dataclass
class Stack:
    root: Path
    smtp_port: int
    daemon: Daemon
    sink: SmtpSink

    def smtp(self, login: str) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=20)
        client.ehlo("customer.example")
        client.login(login, PASSWORDS[login])
        return client


@pytest.fixture
def stack(daemons: list[Daemon], smtp_sink: SmtpSink) -> Iterator[Stack]:
    for exe in ("postfix", "dovecot"):
        if shutil.which(exe) is None and not Path(f"/usr/sbin/{exe}").exists():
            pytest.fail(f"{exe} is missing: run `make deps`")
    # Postfix's unprivileged processes must reach the queue and the SASL socket:
    # not under pytest's 0700 tmp tree.
    root = Path(tempfile.mkdtemp(prefix="relayops-e2e-"))
    root.chmod(0o755)
    smtp_port, policy_port = free_port(), free_port()
    rules = write_rules(
        root / "policy.json",
        rules_data(acme={"daily_quota": QUOTA, "max_message_bytes": MAX_BYTES}),
    )
    daemon = Daemon(
        root,
        rules,
        f"sqlite:{root / 'counters.sqlite'}",
        "--notify-smtp",
        f"127.0.0.1:{smtp_sink.port}",
        name="e2e",
    )
    daemon.port = policy_port
    daemons.append(daemon.start())

    (root / "passwd").write_text(
        "".join(f"{user}:{{PLAIN}}{pw}::::::\n" for user, pw in PASSWORDS.items())
    )
    (root / "dovecot.conf").write_text(DOVECOT_CONF.format(root=root))
    run("dovecot", "-c", str(root / "dovecot.conf"))

    conf = root / "postfix"
    conf.mkdir()
    (conf / "main.cf").write_text(
        MAIN_CF.format(root=root, sink=smtp_sink.port, policy=policy_port)
    )
    (conf / "master.cf").write_text(
        f"127.0.0.1:{smtp_port} inet n - n - - smtpd\n" + POSTFIX_INTERNAL_SERVICES
    )
    (root / "queue").mkdir()
    (root / "data").mkdir()
    shutil.chown(root / "data", "postfix", "postfix")
    try:
        deadline = time.monotonic() + 10
        while not (root / "dovecot-auth").exists():
            assert time.monotonic() < deadline, (root / "dovecot.log").read_text()
            time.sleep(0.05)
        run("postfix", "-c", str(conf), "start", log=root / "postfix.log")
        wait_port(smtp_port, what="postfix")
        yield Stack(root, smtp_port, daemon, smtp_sink)
    finally:
        stop_postfix("postfix", conf, root / "queue")
        with contextlib.suppress(Exception):
            run("doveadm", "-c", str(root / "dovecot.conf"), "stop")
        time.sleep(0.5)
        shutil.rmtree(root, ignore_errors=True)


def message(sender: str, body: str = "hello") -> str:
    return f"From: {sender}\r\nTo: list@example.org\r\nSubject: test\r\n\r\n{body}\r\n"


def test_quota_warning_suspension_and_size_through_postfix(stack: Stack) -> None:
    sender = "news@acme.example"
    rcpts = [f"user{i}@example.org" for i in range(QUOTA + 2)]
    with stack.smtp("acme-app") as smtp:
        refused = smtp.sendmail(sender, rcpts, message(sender))
    # The recipients past the quota get the 4xx with its text; the others are accepted.
    assert sorted(refused) == rcpts[QUOTA:]
    for code, text in refused.values():
        assert code == 452
        assert text.decode().startswith("4.7.1 ")
        assert "daily quota of 5 reached for acme; sending resumes at 00:00 Europe/Paris" in (
            text.decode()
        )

    # The accepted recipients are relayed; the warning and limit mails arrive too.
    received = stack.sink.wait_for(3, timeout=30)
    relayed = [m for m in received if m.mail_from == sender]
    notices = {m.message["Subject"]: m for m in received if m.mail_from != sender}
    assert len(relayed) == 1 and sorted(relayed[0].rcpt_to) == sorted(rcpts[:QUOTA])
    assert set(notices) == {
        "Acme Corp: 80 % of today's quota used",
        "Acme Corp: daily quota of 5 reached",
    }
    assert notices["Acme Corp: 80 % of today's quota used"].rcpt_to == ["ops@acme.example"]

    # A suspended login gets the 5xx with the reason.
    with stack.smtp("globex") as smtp, pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        smtp.sendmail("billing@globex.example", ["a@example.org"], message("b@globex.example"))
    code, text = info.value.recipients["a@example.org"]
    assert code == 554
    assert "5.7.1" in text.decode()
    assert "account globex is suspended: unpaid invoice 2026-117" in text.decode()


def test_sender_domain_and_message_size_through_postfix(stack: Stack) -> None:
    with stack.smtp("acme-app") as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            smtp.sendmail("ceo@not-acme.example", ["a@example.org"], message("x@x"))
        code, text = info.value.recipients["a@example.org"]
        assert code == 553 and "sender domain not-acme.example is not registered" in text.decode()

        # Declared with SIZE at MAIL FROM: refused at RCPT.
        big = message("news@acme.example", "x" * MAX_BYTES)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            smtp.sendmail("news@acme.example", ["a@example.org"], big)
        code, text = info.value.recipients["a@example.org"]
        assert code == 552 and text.decode().startswith("5.3.4 ")
        assert f"message size {len(big)} bytes exceeds the limit of 20000 bytes" in text.decode()

        # Not declared: refused after the data, at END-OF-MESSAGE.
        smtp.rset()
        assert smtp.mail("news@acme.example")[0] == 250
        assert smtp.rcpt("b@example.org")[0] == 250
        code, text = smtp.data(big.encode())
        assert code == 552 and text.startswith(b"5.3.4 ")
        assert b"exceeds the limit of 20000 bytes for acme" in text
    log = stack.daemon.log()
    assert "reason=sender_domain" in log and log.count("reason=size") == 2
    assert stack.daemon.stop(signal.SIGTERM) == 0
