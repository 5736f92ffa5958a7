"""Receivers that talk back, and the service's own mail authenticated, on the lab.

The sink answers like ISPs (lab/receivers.py) and plays the customers' mail servers;
each test asserts the exact SMTP reply the relay's delivery got, read from the relay's
queue (`postqueue -j`: deferrals) or from the DSN the relay sent back to the sender
(refusals). The 80 % warning is checked with independent verifiers (dkimpy, pyspf,
authheaders' DMARC) against the lab DNS, not with relayops' own check code.
"""

from __future__ import annotations

import json
import re
import time
from email.message import Message

import dkim
import pytest

from e2e.mailflow import send, write_yaml_change
from e2e.service_auth import assert_service_authenticated
from e2e.test_quota import clear_counters
from relayops.feedback import Kind, Reason, read_report
from relayops.lab import receivers
from relayops.lab.mail import token
from relayops.lab.sink import Arrived, Sink
from support.deployed import Deployed, copy_example, publish_and_deploy
from support.lab import Lab

pytestmark = pytest.mark.lab

RUN = token()
SERVICE = "relay.example.net"
FEEDBACK = "fbl@relay.example.net"
# acme (shared-eu pool: relay1's 198.18.0.11) sends the probes; its MX is the sink too,
# so the relay's DSNs come back there.
LOGIN, SENDER = "acme-app", f"rcv-{RUN}@acme.example"
ACME_IP = "198.18.0.11"
SINK = "isp.lab[198.18.0.3]"
# globex gets a quota of 5 and a contact on its own domain: 4 recipients send the warning.
CONTACT = f"ops-{RUN}@globex.example"
QUOTA = 5


@pytest.fixture(scope="module")
def sink(deployed: Deployed) -> Sink:
    found = deployed.lab.sink
    found.refresh()  # a lab built before the receiver tables gets them now
    return found


def _dsn_fields(message: Message) -> dict[str, str]:
    """The per-recipient fields of a DSN (RFC 3464), whitespace unfolded."""
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            assert isinstance(blocks, list) and len(blocks) >= 2, blocks
            return {k.lower(): " ".join(str(v).split()) for k, v in blocks[1].items()}
    raise AssertionError("no message/delivery-status part")


def _dsn_about(sink: Sink, recipient: str, *, timeout: float = 60) -> Arrived:
    """The DSN the sender's mailbox (on the sink) got about `recipient`."""
    return sink.wait_for(
        lambda a: a.recipient == SENDER and recipient.encode() in a.path.read_bytes(),
        timeout=timeout,
    )


def _queued(lab: Lab, relay: str, recipient: str, *, timeout: float = 60) -> tuple[str, str]:
    """(queue id, delay reason) of the relay's deferred delivery to `recipient`."""
    deadline = time.monotonic() + timeout
    while True:
        # every instance: deferrals wait in the output instance of the sending IP
        status, out, err = lab.run(relay, "postmulti -x postqueue -j")
        assert status == 0, err
        for line in out.splitlines():
            entry = json.loads(line)
            for rcpt in entry.get("recipients", []):
                if rcpt["address"] == recipient and rcpt.get("delay_reason"):
                    return str(entry["queue_id"]), " ".join(str(rcpt["delay_reason"]).split())
        if time.monotonic() > deadline:
            raise AssertionError(f"{recipient} never deferred on {relay}:\n{out[-2000:]}")
        time.sleep(0.5)


def _drop(lab: Lab, relay: str, queue_id: str) -> None:
    status, _, err = lab.run(relay, f"postmulti -x postsuper -d {queue_id} deferred")
    assert status == 0, err


def _said(reply: str, command: str = "RCPT TO") -> str:
    return f"host {SINK} said: {reply} (in reply to {command} command)"


# ---- the 80 % warning, authenticated ---------------------------------------------------------


@pytest.fixture(scope="module")
def warned(
    tmp_path_factory: pytest.TempPathFactory,
    deployed: Deployed,
    sink: Sink,
    example_afterwards: None,
) -> Arrived:
    root = copy_example(tmp_path_factory.mktemp("receivers") / "repo")
    rel = "customers/globex.yaml"
    write_yaml_change(root, rel, "contact: postmaster@globex.example", f"contact: {CONTACT}")
    write_yaml_change(root, rel, "plan: pro\n", f"plan: pro\nquota_override: {QUOTA}\n")
    clear_counters(deployed, "globex")  # as the daemon's ACL user, over TLS
    variant = publish_and_deploy(deployed.lab, root)
    rcpts = tuple(f"w{i}-{RUN}@isp.lab" for i in range(4))  # 4 of 5: the 80 % threshold
    _, refused = send(variant, "relay1", "globex-mailer", f"news-{RUN}@globex.example", rcpts)
    assert refused == {}
    return sink.wait_for(lambda a: a.recipient == CONTACT, timeout=90)


def test_warning_reaches_the_contacts_own_mail_server(warned: Arrived) -> None:
    assert warned.message["From"] == f"noreply@{SERVICE}"
    assert warned.message["Return-Path"] == f"<noreply@{SERVICE}>"
    assert "80 %" in str(warned.message["Subject"]), warned.message["Subject"]


def test_warning_passes_dkim_spf_and_dmarc(warned: Arrived, lab_dns: None) -> None:
    assert assert_service_authenticated(warned) == ACME_IP


# ---- receivers talking back --------------------------------------------------------------


def _send(deployed: Deployed, *rcpts: str) -> None:
    _, refused = send(deployed, "relay1", LOGIN, SENDER, rcpts)
    assert refused == {}


def test_unknown_user_is_refused_with_550_5_1_1(
    deployed: Deployed, sink: Sink, lab_dns: None
) -> None:
    rcpt = f"unknown-{RUN}@isp.lab"
    _send(deployed, rcpt)
    dsn = _dsn_about(sink, rcpt)
    fields = _dsn_fields(dsn.message)
    want = receivers.reply(receivers.USER_UNKNOWN, rcpt=rcpt)
    assert want == f"550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"
    assert fields["diagnostic-code"] == f"smtp; {want}"
    assert fields["status"] == "5.1.1"
    # The relay's own bounce is signed by the service domain (From: MAILER-DAEMON@<service>).
    raw = dsn.path.read_bytes()
    assert str(dsn.message["From"]) == f"Mail Delivery System <MAILER-DAEMON@{SERVICE}>"
    assert dkim.verify(raw)
    assert f"d={SERVICE};" in "".join(str(dsn.message["DKIM-Signature"]).split())
    report = read_report(raw)
    assert report.kind == Kind.BOUNCE
    assert [(r.address, r.reason, r.hard) for r in report.recipients] == [
        (rcpt, Reason.USER_UNKNOWN, True)
    ]


def test_reputation_block_is_refused_as_large_isps_word_it(deployed: Deployed, sink: Sink) -> None:
    rcpt = f"r-{RUN}@{receivers.BLOCKED_DOMAIN}"
    _send(deployed, rcpt)
    fields = _dsn_fields(_dsn_about(sink, rcpt).message)
    want = receivers.reply(receivers.REPUTATION_BLOCK, ip=ACME_IP)
    assert want == (
        f"550 5.7.1 Service unavailable, Client host [{ACME_IP}] blocked using "
        "reputation.lab; low reputation of the sending IP"
    )
    assert fields["diagnostic-code"] == f"smtp; {want}"


def test_full_mailbox_is_deferred_with_452_4_2_2(deployed: Deployed, sink: Sink) -> None:
    rcpt = f"full-{RUN}@isp.lab"
    _send(deployed, rcpt)
    queue_id, reason = _queued(deployed.lab, "relay1", rcpt)
    try:
        want = receivers.reply(receivers.MAILBOX_FULL, rcpt=rcpt)
        assert want == f"452 4.2.2 <{rcpt}>: Recipient address rejected: Mailbox full"
        assert reason == _said(want)
    finally:
        _drop(deployed.lab, "relay1", queue_id)


def test_over_quota_is_refused_with_552_5_2_2(deployed: Deployed, sink: Sink) -> None:
    """Postfix's smtp client takes a 552 at RCPT as permanent: the sender gets a DSN."""
    rcpt = f"overquota-{RUN}@isp.lab"
    _send(deployed, rcpt)
    dsn = _dsn_about(sink, rcpt)
    fields = _dsn_fields(dsn.message)
    want = receivers.reply(receivers.OVER_QUOTA, rcpt=rcpt)
    assert want == f"552 5.2.2 <{rcpt}>: Recipient address rejected: Mailbox over quota"
    assert (fields["status"], fields["diagnostic-code"]) == ("5.2.2", f"smtp; {want}")
    report = read_report(dsn.path.read_bytes())
    assert [(r.reason, r.hard) for r in report.recipients] == [(Reason.MAILBOX_FULL, False)]


def test_yahoo_style_deferral_switches_at_run_time(deployed: Deployed, sink: Sink) -> None:
    rcpt = f"y-{RUN}@yahoo.com"
    sink.defer_volume(("yahoo.com",))
    try:
        _send(deployed, rcpt)
        _, reason = _queued(deployed.lab, "relay1", rcpt)
        want = receivers.reply(receivers.VOLUME_DEFERRAL, ip=ACME_IP)
        assert want == (
            f"421 4.7.0 [TSS04] Messages from {ACME_IP} temporarily deferred due to "
            "unexpected volume or user complaints"
        )
        assert reason == _said(want)
    finally:
        sink.defer_volume(())
    # Switched off without a restart: the next attempt is delivered.
    status, _, err = deployed.lab.run("relay1", "postmulti -x postqueue -f")
    assert status == 0, err
    sink.wait_for(lambda a: a.recipient == rcpt, timeout=90)


def test_late_bounce_goes_to_the_return_paths_mx(deployed: Deployed, sink: Sink) -> None:
    """Accepted (250), then the sink's own DSN to the Return-Path: acme.example's MX."""
    rcpt = f"late-{RUN}@isp.lab"
    _send(deployed, rcpt)
    dsn = _dsn_about(sink, rcpt)
    fields = _dsn_fields(dsn.message)
    # pipe(8) reports the command's output, whose leading 5.1.1 becomes the status
    assert fields["status"] == receivers.LATE_STATUS == "5.1.1"
    assert fields["diagnostic-code"] == f"x-unix; {receivers.LATE_REASON}"
    assert "isp.lab" in str(dsn.message["From"])  # the sink's MAILER-DAEMON, not the relay's
    # The sink queued it (the relay's DATA got 250), then its pipe transport bounced it.
    log = sink.log()
    bounced = re.search(
        rf"postfix/pipe\[\d+\]: (\w+): to=<{re.escape(rcpt)}>, relay=relayops-late-bounce,"
        r".*status=bounced",
        log,
    )
    assert bounced, log[-3000:]
    assert f"{bounced.group(1)}: client=relay1.relay.example.net[{ACME_IP}]" in log


def test_late_bounce_of_service_mail_reaches_a_relays_port_25(
    deployed: Deployed, sink: Sink
) -> None:
    """The DSN to noreply@<service> goes to the MX the lab DNS names (the relays): 250."""
    rcpt = f"late-svc-{RUN}@isp.lab"
    script = (
        f"printf 'From: noreply@{SERVICE}\\nTo: {rcpt}\\nSubject: svc {RUN}\\n\\nx\\n' | "
        f"sendmail -f noreply@{SERVICE} {rcpt}"
    )
    status, _, err = deployed.lab.run("relay1", script)
    assert status == 0, err
    deadline = time.monotonic() + 60
    pattern = (
        rf"postfix/pipe\[\d+\]: (\w+): to=<{re.escape(rcpt)}>.*status=bounced.*\n"
        r"(?:.*\n)*?.*postfix/bounce\[\d+\]: \1: sender non-delivery notification: (\w+)\n"
        rf"(?:.*\n)*?.*postfix/smtp\[\d+\]: \2: to=<noreply@{re.escape(SERVICE)}>, "
        r"relay=(relay\d\.relay\.example\.net)\[[\d.]+\]:25, .*status=sent \((250 [^)]*)\)"
    )
    while not (found := re.search(pattern, sink.log())):
        assert time.monotonic() < deadline, sink.log()[-4000:]
        time.sleep(0.5)
    assert found.group(3) in ("relay1.relay.example.net", "relay2.relay.example.net")
    assert found.group(4).startswith("250 2.0.0 Ok: queued as "), found.group(4)


@pytest.mark.parametrize("style", ["arf", "jmrp"])
def test_complaint_reaches_the_feedback_address_on_a_relay(
    deployed: Deployed, sink: Sink, warned: Arrived, style: str
) -> None:
    replies = sink.complain(warned, to=FEEDBACK, style=style)  # type: ignore[arg-type]
    assert (replies.host, replies.address) == ("relay1.relay.example.net", "198.18.0.11")
    assert replies.mail[0] == 250 and replies.rcpt[0] == 250, replies
    assert replies.data is not None and replies.data[0] == 250, replies
    assert replies.data[1].startswith("2.0.0 Ok: queued as "), replies
