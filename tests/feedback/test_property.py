"""Mail from the outside world never crashes the reader: arbitrary bytes, truncated
and corrupted real reports give kind `other` or a reading that is consistent."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback.corpus import corpus_dir
from relayops.feedback import Kind, Report, make_trace, read_report
from relayops.feedback.model import HARD_REASONS, Reason

SAMPLES = sorted(corpus_dir().glob("*.eml")) or [Path(__file__)]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_consistent(report: Report) -> None:
    assert isinstance(report.kind, Kind)
    json.dumps(report.to_json())
    for rcpt in report.recipients:
        if rcpt.hard:
            # Hard means a dead address refused permanently: nothing else.
            assert rcpt.reason in HARD_REASONS
            assert rcpt.status is None or rcpt.status.startswith("5")
            assert report.kind is Kind.BOUNCE
        if rcpt.reason is Reason.REPUTATION:
            assert rcpt.hard is False
    if report.kind is Kind.COMPLAINT:
        assert report.feedback_type
        assert all(r.reason is Reason.COMPLAINT for r in report.recipients)
    else:
        assert report.feedback_type is None
    if report.kind is Kind.AUTO_REPLY:
        assert report.recipients == ()


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    assert_consistent(read_report(data))


@SETTINGS
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type: multipart/report; boundary=x\n",
                b"--x\n",
                b"\n",
                b"Status: 5.1.1\n",
                b"Final-Recipient: rfc822; a@b.example\n",
                b"Content-Type: message/delivery-status\n",
                b"Feedback-Type: abuse\n",
                b"Content-Type: message/feedback-report\n",
                b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n",
                b"From: MAILER-DAEMON@x\n",
                b"<a@b.example>:\n",
                b'{"notificationType":"Bounce"',
                b"\r",
                b"\xff\xfe",
                b"Content-Transfer-Encoding: base64\n",
                b"=?utf-8?b?8J+QiA==?=",
                b"--x--\n",
                b"X-Relayops-Trace: v=1; c=a; l=b; q=C; t=1; h=AAAAAAAAAAAAAAAAAAAAAA\n",
            ]
        ),
        max_size=60,
    )
)
def test_report_shaped_garbage(chunks: list[bytes]) -> None:
    assert_consistent(read_report(b"".join(chunks), trace_key=b"k"))


@SETTINGS
@given(st.sampled_from(SAMPLES), st.floats(min_value=0.0, max_value=1.0))
def test_truncated_corpus_files(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    assert_consistent(read_report(data[: int(len(data) * fraction)]))


@SETTINGS
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=40),
)
def test_corrupted_corpus_files(path: Path, flips: list[tuple[float, int]]) -> None:
    data = bytearray(path.read_bytes())
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    assert_consistent(read_report(bytes(data)))


@SETTINGS
@given(st.text(max_size=300))
def test_any_trace_header_is_never_verified_without_the_key(header: str) -> None:
    data = f"Subject: x\nX-Relayops-Trace: {header}\n\nhi\n".encode("utf-8", "replace")
    message = (
        b"From: MAILER-DAEMON@x\nSubject: Undelivered Mail\nContent-Type: text/plain\n\n"
        b"<a@b.example>: 550 5.1.1 user unknown\n\n"
        b"--- Below this line is a copy of the message.\n\n" + data
    )
    report = read_report(message, trace_key=b"wrong")
    assert report.origin.trace_verified is False
    assert_consistent(report)


def test_a_valid_stamp_under_the_wrong_key_is_unverified() -> None:
    stamp = make_trace(customer="acme", login="app", queue_id="Q1", time=1, key=b"right")
    message = (
        b"From: MAILER-DAEMON@x\nSubject: Undelivered Mail\nContent-Type: text/plain\n\n"
        b"<a@b.example>: 550 5.1.1 user unknown\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        + f"Subject: x\nX-Relayops-Trace: {stamp}\n\nhi\n".encode()
    )
    wrong = read_report(message, trace_key=b"wrong").origin
    right = read_report(message, trace_key=b"right").origin
    assert (wrong.customer, wrong.trace_verified) == ("acme", False)
    assert (right.customer, right.trace_verified) == ("acme", True)
