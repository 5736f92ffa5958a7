"""The classification tables: reply text + status → reason, and hard only for a dead
address refused permanently."""

from __future__ import annotations

import pytest

from relayops.feedback.classify import classify, is_hard
from relayops.feedback.model import Reason
from relayops.feedback.reply import find_smtp_code, find_status, reply_excerpt

R = Reason

CASES = [
    # (reply, status, expected reason)
    ("550 5.1.1 <a@example.org>... User Unknown", "5.1.1", R.USER_UNKNOWN),
    ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", "5.1.10", R.USER_UNKNOWN),
    ("554 delivery error: dd This user doesn't have a yahoo.com account", "5.0.0", R.USER_UNKNOWN),
    ("550 #5.1.0 Address rejected.", "5.1.0", R.USER_UNKNOWN),
    ("Sorry, I couldn't find any host named cx.example.com. (#5.1.2)", "5.1.2", R.DOMAIN_UNKNOWN),
    ("an MX or SRV record indicated no SMTP service", None, R.DOMAIN_UNKNOWN),
    ("550 5.1.6 recipient no longer on server: a@example.jp", "5.1.6", R.MOVED),
    (
        "552 5.2.2 <a@example.org> Quota exceeded (mailbox for user is full)",
        "5.2.2",
        R.MAILBOX_FULL,
    ),
    (
        "550 5.2.1 The email account that you tried to reach is disabled.",
        "5.2.1",
        R.MAILBOX_DISABLED,
    ),
    ("550 5.7.606 Access denied, banned sending IP [192.0.2.1].", "5.7.606", R.REPUTATION),
    ("554 5.7.1 Client host rejected: blocked using zen.spamhaus.org", "5.7.1", R.REPUTATION),
    ("421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred", "4.7.0", R.REPUTATION),
    (
        "451 4.7.650 The mail server has been temporarily rate limited due to IP reputation",
        "4.7.650",
        R.REPUTATION,
    ),
    ("550 5.7.26 Unauthenticated email is not accepted", "5.7.26", R.AUTH_FAILURE),
    ("550 5.7.1 Email rejected per DMARC policy for example.org", "5.7.1", R.AUTH_FAILURE),
    ("554 5.6.0 This message has been scored as spam", "5.6.0", R.SPAM_CONTENT),
    ("552 5.2.3 Message size exceeds fixed maximum message size", "5.2.3", R.TOO_BIG),
    ("452 4.3.2 Connection rate limit exceeded.", "4.3.2", R.RATE_LIMITED),
    (
        "550 5.7.1 The user is receiving mail at a rate that prevents delivery",
        "5.7.1",
        R.RATE_LIMITED,
    ),
    ("554 4.4.7 Message expired: unable to deliver in 840 minutes.", "4.4.7", R.EXPIRED),
    ("connect to example.org[192.0.2.1]:25: Connection timed out", None, R.NETWORK),
    ("452 4.4.5 Insufficient disk space; try again later", "4.4.5", R.SYSTEM),
    ("503 Improper sequence of commands", None, R.UNKNOWN),
    ("550 5.7.1 Messages with multiple addresses in From: header", "5.7.1", R.PROTOCOL),
    ("554 5.7.1 <a@example.org>: Relay access denied", "5.7.1", R.POLICY),
    ("554 5.7.9 Message not accepted for policy reasons.", "5.7.9", R.POLICY),
    ("250 2.6.0 Message received", "2.6.0", R.DELIVERED),
    ("", None, R.UNKNOWN),
]


@pytest.mark.parametrize(("reply", "status", "reason"), CASES)
def test_reason_table(reply: str, status: str | None, reason: Reason) -> None:
    assert classify(reply, status) is reason


def test_the_reply_text_outranks_a_generic_status() -> None:
    assert classify("550 5.0.0 Mailbox Full", "5.0.0") is R.MAILBOX_FULL
    # ... and the status decides when the text says nothing precise.
    assert classify("550 5.2.2 go away", "5.2.2") is R.MAILBOX_FULL
    assert classify("550 5.1.1 go away", "5.1.1") is R.USER_UNKNOWN


def test_a_refusal_of_our_sender_is_never_about_the_recipient() -> None:
    reply = "553 5.1.0 sender.example does not exist"
    assert classify(reply, "5.1.0") is R.USER_UNKNOWN
    assert classify(reply, "5.1.0", context="SMTP error after MAIL FROM:<a@b>") is R.POLICY
    assert classify("501 5.1.8 Domain of sender address does not exist", "5.1.8") is R.POLICY


def test_unknown_user_after_data_is_a_filter_not_a_dead_address() -> None:
    reply = "550 Unknown user a@example.net"
    assert classify(reply, "5.0.0") is R.USER_UNKNOWN
    assert classify(reply, "5.0.0", context="(in reply to end of DATA command)") is R.POLICY
    # Sendmail's pipelined transcript shows ">>> DATA" before RCPT refusals: not DATA stage.
    assert classify(reply, "5.0.0", context=">>> DATA\n<<< 550 Unknown user") is R.USER_UNKNOWN


@pytest.mark.parametrize("reason", list(Reason))
def test_hard_only_for_a_dead_address_refused_permanently(reason: Reason) -> None:
    dead = reason in (R.USER_UNKNOWN, R.DOMAIN_UNKNOWN, R.MOVED)
    assert is_hard(reason, permanent=True) is dead
    assert is_hard(reason, permanent=False) is False


def test_a_reputation_block_is_never_hard() -> None:
    reply = "550 5.7.1 Service unavailable; client [192.0.2.1] blocked using Spamhaus; user unknown"
    assert classify(reply, "5.7.1") is R.REPUTATION
    assert is_hard(classify(reply, "5.7.1"), permanent=True) is False


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [
        ("550 5.1.1 <a@b>... User Unknown", "5.1.1", "550"),
        ("host 192.0.2.1 said: 550 5.7.1 denied", "5.7.1", "550"),
        ("Server (TLS) id 15.1.112.19; 550 5.1.10 not found", "5.1.10", "550"),
        ("5.1.0 - Unknown address error 550-'5.7.1 <x@y>... Access denied'", "5.7.1", "550"),
        ("Out: 250 2.1.5 Ok\n Out: 451 4.3.0 Error: queue file write error", "4.3.0", "451"),
        ("Sorry, no mail exchanger. (#5.4.4)", "5.4.4", None),
        ("nothing here 192.0.2.45", None, None),
    ],
)
def test_codes_in_a_reply(text: str, status: str | None, code: str | None) -> None:
    assert find_status(text) == status
    assert find_smtp_code(text) == code


def test_reply_excerpt_starts_at_the_remote_reply() -> None:
    text = "host mx.example.jp [192.0.2.20]:\n   550 5.7.0 Please use the smtp server of your ISP."
    assert reply_excerpt(text) == "550 5.7.0 Please use the smtp server of your ISP."
    # qmail writes the code last: then the words before it are the reply.
    assert reply_excerpt("I couldn't find a mail exchanger. (#5.4.4)") == (
        "I couldn't find a mail exchanger. (#5.4.4)"
    )


def test_a_temporary_dns_failure_is_not_an_unknown_domain() -> None:
    reply = "Name service error for domain example.com: Host not found, try again"
    assert classify(reply, None) is R.NETWORK
    assert classify("Host or domain name not found. Name service error", None) is (R.DOMAIN_UNKNOWN)


def test_directory_wording_for_an_unknown_user_is_no_blocklist() -> None:
    assert classify("User J. Doe (jd@example.jp) not listed in Domino Directory", None) is (
        R.USER_UNKNOWN
    )
    assert classify("554 5.7.1 Service unavailable; 192.0.2.1 listed in zen.example", "5.7.1") is (
        R.REPUTATION
    )
