"""`read_report` on real corpus samples (exact readings) and on a bounce of the relay's
own stamped mail."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

from relayops.feedback import Kind, Reason, make_trace, read_report
from relayops.feedback.parse import MAX_PARSE_BYTES

KEY = b"relay-service-key"


def _read(corpus: Path, name: str) -> bytes:
    return (corpus / name).read_bytes()


def test_two_recipients_of_a_text_bounce_each_with_its_reply(corpus: Path) -> None:
    report = read_report(_read(corpus, "lhost-gmx-03.eml"))
    assert report.kind is Kind.BOUNCE
    got = [(r.address, r.status, r.reason, r.hard) for r in report.recipients]
    assert got == [
        ("mikeneko@example.co.jp", "5.2.1", Reason.USER_UNKNOWN, True),
        ("sabineko@example.co.jp", "5.2.2", Reason.MAILBOX_FULL, False),
    ]
    assert report.recipients[1].reply == "5.2.2 <sabineko@example.co.jp>... Mailbox Full"


def test_an_rfc3464_report(corpus: Path) -> None:
    report = read_report(_read(corpus, "lhost-sendmail-01.eml"))
    (rcpt,) = report.recipients
    assert (rcpt.address, rcpt.status, rcpt.smtp_code, rcpt.action) == (
        "userunknown@bouncehammer.jp",
        "5.1.1",
        "550",
        "failed",
    )
    assert rcpt.reply == "550 5.1.1 <userunknown@bouncehammer.jp>... User Unknown"
    assert rcpt.hard is True


def test_an_arf_complaint(corpus: Path) -> None:
    report = read_report(_read(corpus, "arf-17.eml"))
    assert (report.kind, report.feedback_type) == (Kind.COMPLAINT, "abuse")
    assert [r.address for r in report.recipients] == [
        "kijitora@example.com",
        "sabatora@example.net",
    ]
    assert not any(r.hard for r in report.recipients)


def test_an_auth_failure_report_is_a_complaint_of_another_type(corpus: Path) -> None:
    report = read_report(_read(corpus, "arf-19.eml"))
    assert (report.kind, report.feedback_type) == (Kind.COMPLAINT, "auth-failure")


def test_a_microsoft_jmrp_report_without_an_arf_part(corpus: Path) -> None:
    report = read_report(_read(corpus, "arf-23.eml"))
    assert (report.kind, report.feedback_type) == (Kind.COMPLAINT, "abuse")
    assert [r.address for r in report.recipients] == ["kijitora@example.com"]
    assert report.origin.message_id == "<0000000000fffffffff0000000000000@example.com>"


def test_amazon_ses_notifications(corpus: Path) -> None:
    bounce = read_report(_read(corpus, "lhost-amazonses-09.eml"))
    assert bounce.kind is Kind.BOUNCE
    assert [(r.address, r.status, r.hard) for r in bounce.recipients] == [
        ("bounce@simulator.amazonses.com", "5.1.1", True)
    ]
    complaint = read_report(_read(corpus, "lhost-amazonses-11.eml"))
    assert (complaint.kind, complaint.feedback_type) == (Kind.COMPLAINT, "abuse")
    assert read_report(_read(corpus, "lhost-amazonses-13.eml")).kind is Kind.OTHER


def test_a_reputation_block_is_soft(corpus: Path) -> None:
    (rcpt,) = read_report(_read(corpus, "rhost-microsoft-01.eml")).recipients
    assert (rcpt.status, rcpt.reason, rcpt.hard) == ("5.7.606", Reason.REPUTATION, False)


def test_a_temporary_user_unknown_is_not_hard(corpus: Path) -> None:
    (rcpt,) = read_report(_read(corpus, "lhost-postfix-05.eml")).recipients
    assert (rcpt.status, rcpt.reason, rcpt.hard) == ("4.1.1", Reason.USER_UNKNOWN, False)


def test_a_report_whose_mime_boundary_never_occurs(corpus: Path) -> None:
    (rcpt,) = read_report(_read(corpus, "rhost-franceptt-07.eml")).recipients
    assert (rcpt.address, rcpt.status, rcpt.smtp_code, rcpt.hard) == (
        "xxxx@wanadoo.fr",
        "4.0.0",
        "421",
        False,
    )


def test_mail_that_is_no_report(corpus: Path) -> None:
    for name in ("not-is-not-bounce-01.eml", "not-is-not-bounce-02.eml"):
        report = read_report(_read(corpus, name))
        assert (report.kind, report.recipients) == (Kind.OTHER, ())


def _relay_bounce(stamp: str, *, attachment: bytes = b"") -> bytes:
    """A Postfix bounce of a message the relay stamped, as the relay would receive it."""
    return (
        b"From: MAILER-DAEMON@mx.receiver.example (Mail Delivery System)\n"
        b"To: app@acme.example\n"
        b"Subject: Undelivered Mail Returned to Sender\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n'
        b"\n--B\nContent-Type: text/plain\n\n"
        b"<gone@receiver.example>: host mx.receiver.example[192.0.2.9] said: 550 5.1.1\n"
        b"    <gone@receiver.example>: Recipient address rejected: User unknown\n"
        b"\n--B\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.receiver.example\nX-Postfix-Queue-ID: 9F00A1\n\n"
        b"Final-Recipient: rfc822; gone@receiver.example\nAction: failed\nStatus: 5.1.1\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 <gone@receiver.example>: Recipient address\n"
        b"    rejected: User unknown\n"
        b"\n--B\nContent-Type: message/rfc822\n\n"
        b"Received: from relay1.relayops.example (relay1.relayops.example [198.18.0.10])\n"
        b"\tby mx.receiver.example (Postfix) with ESMTPS id 9F00A1\n"
        b"Received: from app.acme.example (app.acme.example [203.0.113.5])\n"
        b"\tby relay1.relayops.example (Postfix) with ESMTPSA id 4XyZab12\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=rly2026; bh=x; b=y\n"
        + f"X-Relayops-Trace: {stamp}\n".encode()
        + b"Feedback-ID: acme-app:acme:relayops\n"
        b"Message-ID: <20261201.1@acme.example>\nFrom: app@acme.example\n"
        b"To: gone@receiver.example\nSubject: hello\n"
        b'Content-Type: multipart/mixed; boundary="C"\n\n--C\nContent-Type: text/plain\n\nhi\n'
        b"--C\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        + attachment
        + b"\n--C--\n\n--B--\n"
    )


def test_whose_message_a_relay_bounce_was() -> None:
    stamp = make_trace(customer="acme", login="acme-app", queue_id="4XyZab12", time=1, key=KEY)
    report = read_report(_relay_bounce(stamp), trace_key=KEY)
    (rcpt,) = report.recipients
    assert (rcpt.address, rcpt.status, rcpt.hard) == ("gone@receiver.example", "5.1.1", True)
    origin = report.origin
    assert (origin.customer, origin.login, origin.trace_verified) == ("acme", "acme-app", True)
    assert origin.trace_queue_id == "4XyZab12"
    assert origin.postfix_queue_id == "4XyZab12"  # the ESMTPSA hop: the relay's own
    assert origin.reporting_queue_id == "9F00A1"
    assert origin.dkim_domains == ("acme.example",)
    assert origin.message_id == "<20261201.1@acme.example>"
    assert origin.feedback_id == "acme-app:acme:relayops"


def test_a_forged_stamp_is_reported_unverified() -> None:
    stamp = make_trace(customer="acme", login="acme-app", queue_id="4XyZab12", time=1, key=b"x")
    report = read_report(_relay_bounce(stamp), trace_key=KEY)
    assert (report.origin.customer, report.origin.trace_verified) == ("acme", False)
    unkeyed = read_report(_relay_bounce(stamp))
    assert unkeyed.origin.trace_verified is False


def test_a_50_mb_attachment_is_cut_not_parsed() -> None:
    stamp = make_trace(customer="acme", login="acme-app", queue_id="4XyZab12", time=1, key=KEY)
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n"
    data = _relay_bounce(stamp, attachment=line * (50 * 1024 * 1024 // len(line)))
    assert len(data) > 50 * 1024 * 1024
    tracemalloc.start()
    start = time.perf_counter()
    report = read_report(data, trace_key=KEY)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.truncated is True
    assert [r.address for r in report.recipients] == ["gone@receiver.example"]
    assert report.origin.trace_verified is True
    assert elapsed < 2.0
    # The parser's copies of the capped head (str decoding, line lists): ~9x the cap,
    # measured 18 MB, and the same for a 5 MB or a 500 MB input.
    assert peak < 12 * MAX_PARSE_BYTES


def test_an_out_of_office_reply() -> None:
    data = (
        b"From: Kim <kim@example.net>\nTo: app@acme.example\nSubject: Out of Office: hello\n"
        b"Auto-Submitted: auto-replied\n\nI am away until Monday.\n"
    )
    report = read_report(data)
    assert (report.kind, report.recipients) == (Kind.AUTO_REPLY, ())


def test_a_person_quoting_report_words_is_not_a_report() -> None:
    data = (
        b"From: Kim <kim@example.net>\nTo: app@acme.example\nSubject: about ARF\n\n"
        b"How do I read these?\n"
    )
    assert read_report(data).kind is Kind.OTHER


def test_feedback_type_inside_a_returned_message_is_no_complaint() -> None:
    data = (
        b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\n\n"
        b"<gone@example.net>: host mx.example.net said: 550 5.1.1 user unknown\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        b"Subject: a guide\n\nFeedback-Type: abuse\nis how ARF reports start.\n"
    )
    report = read_report(data)
    assert (report.kind, report.feedback_type) == (Kind.BOUNCE, None)
    assert [(r.address, r.status, r.hard) for r in report.recipients] == [
        ("gone@example.net", "5.1.1", True)
    ]


def _dsn(action: str, status: str, diagnostic: str) -> bytes:
    return (
        b"From: MAILER-DAEMON@relay.example\nSubject: Delivery Status Notification\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nSee below.\n"
        b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example\n\n"
        + f"Final-Recipient: rfc822; kim@example.net\nAction: {action}\nStatus: {status}\n".encode()
        + (f"Diagnostic-Code: smtp; {diagnostic}\n".encode() if diagnostic else b"")
        + b"\n--B--\n"
    )


def test_a_delay_warning_is_a_soft_bounce() -> None:
    report = read_report(_dsn("delayed", "4.4.1", "connect to mx.example.net: Connection refused"))
    (rcpt,) = report.recipients
    assert report.kind is Kind.BOUNCE
    assert (rcpt.action, rcpt.status, rcpt.reason, rcpt.hard) == (
        "delayed",
        "4.4.1",
        Reason.NETWORK,
        False,
    )


def test_a_success_dsn_is_other() -> None:
    report = read_report(_dsn("delivered", "2.0.0", "250 2.0.0 Ok: queued as 4XyZ"))
    assert report.kind is Kind.OTHER
    assert [(r.reason, r.hard) for r in report.recipients] == [(Reason.DELIVERED, False)]


def test_permanent_and_temporary_sides_of_the_same_reply() -> None:
    hard = read_report(_dsn("failed", "5.1.1", "550 5.1.1 <kim@example.net>: User unknown"))
    soft = read_report(_dsn("delayed", "4.1.1", "450 4.1.1 <kim@example.net>: User unknown"))
    assert [(r.reason, r.hard) for r in hard.recipients] == [(Reason.USER_UNKNOWN, True)]
    assert [(r.reason, r.hard) for r in soft.recipients] == [(Reason.USER_UNKNOWN, False)]


def test_an_sns_envelope_around_an_ses_bounce() -> None:
    inner = (
        '{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":'
        '[{"emailAddress":"gone@example.net","action":"failed","status":"5.1.1",'
        '"diagnosticCode":"smtp; 550 5.1.1 user unknown"}]}}'
    )
    envelope = json.dumps({"Type": "Notification", "Message": inner}, indent=2)
    data = b"From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n\n"
    report = read_report(data + envelope.encode())
    assert report.kind is Kind.BOUNCE
    assert [(r.address, r.status, r.reply, r.hard) for r in report.recipients] == [
        ("gone@example.net", "5.1.1", "550 5.1.1 user unknown", True)
    ]
    # Cut by a mail system so that the envelope no longer decodes: still read.
    cut = envelope[: envelope.rindex("}}") + 2]
    again = read_report(data + cut.encode())
    assert [(r.address, r.status) for r in again.recipients] == [("gone@example.net", "5.1.1")]
