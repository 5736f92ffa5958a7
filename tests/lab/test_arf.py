"""The sink's complaint reports: exact fields, and `relayops.feedback` reads them back."""

from __future__ import annotations

import contextlib
import email
import email.policy
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayops.feedback import Kind, read_report
from relayops.lab.arf import (
    ReportInputError,
    arf_report,
    complaint,
    feedback_fields,
    jmrp_report,
    reported,
)

# A message as the sink stores it (virtual(8) adds Return-Path, Delivered-To).
STORED = (
    b"Return-Path: <noreply@relay.example.net>\n"
    b"X-Original-To: ops@globex.example\n"
    b"Delivered-To: ops@globex.example\n"
    b"Received: from relay1.relay.example.net (relay1.relay.example.net [198.18.0.11])\n"
    b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n"
    b"\t(No client certificate requested)\n"
    b"\tby isp.lab (Postfix) with ESMTPS id C6D091769C3\n"
    b"\tfor <ops@globex.example>; Tue,  1 Dec 2026 06:37:24 +0000 (UTC)\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=relay.example.net;\n"
    b"\ts=svc2026; t=1796107044; bh=x4prkmHiAwu89GEgv67urbbBduNafgpMxwIc+OOYS6Q=;\n"
    b"\th=From:To:Subject:Date:From; b=iIX58CZYfjv+2OykYzpGviA3CZRRF8A5uxNbf+fe7gKEZbUd6\n"
    b"From: noreply@relay.example.net\n"
    b"To: ops@globex.example\n"
    b"Subject: globex: 80 % of the daily quota used\n"
    b"Date: Tue, 01 Dec 2026 06:37:24 +0000\n"
    b"Message-ID: <179610704453.17594.1432@relay.example.net>\n"
    b"\n"
    b"You have used 4 of 5.\n"
)
WHEN = datetime(2026, 12, 1, 7, 0, 0, tzinfo=UTC)
ARGS = {
    "reporter": "ISP Lab Feedback Loop <fbl-reports@isp.lab>",
    "to": "fbl@relay.example.net",
    "date": WHEN,
    "message_id": "<report-1@isp.lab>",
}


def test_reported_reads_the_sinks_headers() -> None:
    facts = reported(STORED)
    assert facts.mail_from == "noreply@relay.example.net"
    assert facts.rcpt_to == "ops@globex.example"
    assert facts.source_ip == "198.18.0.11"
    assert facts.arrival == datetime(2026, 12, 1, 6, 37, 24, tzinfo=UTC)
    assert facts.reported_domain == "relay.example.net"
    assert facts.subject == "globex: 80 % of the daily quota used"


def test_feedback_report_fields_are_exact() -> None:
    assert feedback_fields(reported(STORED)) == (
        "Feedback-Type: abuse\r\n"
        "User-Agent: relayops-lab-fbl/1.0\r\n"
        "Version: 1\r\n"
        "Original-Mail-From: <noreply@relay.example.net>\r\n"
        "Original-Rcpt-To: <ops@globex.example>\r\n"
        "Arrival-Date: Tue, 01 Dec 2026 06:37:24 +0000\r\n"
        "Source-IP: 198.18.0.11\r\n"
        "Reported-Domain: relay.example.net\r\n"
    )


def test_arf_report_is_rfc5965_shaped() -> None:
    raw = arf_report(reported(STORED), **ARGS)  # type: ignore[arg-type]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "feedback-report"
    assert message["To"] == "fbl@relay.example.net"
    assert message["Subject"] == "FW: globex: 80 % of the daily quota used"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "message/feedback-report", "message/rfc822"]
    assert b"\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    # the original is returned whole: its header lines as received, its body
    returned = raw.split(b"Content-Type: message/rfc822", 1)[1]
    assert b"\ts=svc2026; t=1796107044; bh=x4prkmHiAwu89GEgv67urbbBduNafgpMxwIc+OOYS6Q=;" in (
        returned.replace(b"\r\n", b"\n")
    )
    assert b"You have used 4 of 5." in returned


def test_arf_report_is_deterministic() -> None:
    facts = reported(STORED)
    assert arf_report(facts, **ARGS) == arf_report(facts, **ARGS)  # type: ignore[arg-type]


@pytest.mark.parametrize("style", ["arf", "jmrp"])
def test_feedback_reader_reads_the_report_back(style: str) -> None:
    raw = complaint(reported(STORED), style=style, **ARGS)  # type: ignore[arg-type]
    report = read_report(raw)
    assert report.kind == Kind.COMPLAINT
    assert report.feedback_type == "abuse"
    assert report.origin.message_id == "<179610704453.17594.1432@relay.example.net>"
    assert [r.address for r in report.recipients] == ["ops@globex.example"]
    assert "relay.example.net" in report.origin.dkim_domains


def test_jmrp_names_the_complainant_on_top_of_the_original() -> None:
    raw = jmrp_report(reported(STORED), **ARGS)  # type: ignore[arg-type]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "complaint about message from 198.18.0.11"
    (part,) = list(message.iter_parts())
    assert part.get_content_type() == "message/rfc822"
    assert b"\r\n\r\nX-HmXmrOriginalRecipient: ops@globex.example\r\nReturn-Path:" in raw


RECEIVED = b"Received: from relay1.relay.example.net (relay1.relay.example.net [198.18.0.11])"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"Delivered-To: ops@globex.example\n", b"", "no Delivered-To"),
        (RECEIVED, b"Received: from relay1.relay.example.net (unknown)", "no client address"),
        (b"; Tue,  1 Dec 2026 06:37:24 +0000 (UTC)", b"; yesterday", "no date"),
    ],
)
def test_a_message_the_sink_did_not_store_is_refused(old: bytes, new: bytes, message: str) -> None:
    assert old in STORED
    with pytest.raises(ReportInputError, match=message):
        reported(STORED.replace(old, new))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_reported_never_crashes_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(ReportInputError):
        reported(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=500))
def test_reported_never_crashes_on_a_mangled_stored_message(tail: bytes) -> None:
    try:
        facts = reported(STORED[:600] + tail)
    except ReportInputError:
        return
    assert facts.rcpt_to == "ops@globex.example"
