"""End to end: a private Postfix asks `relayops policyd --milter` about each message.

Postfix (Debian package) runs on a loopback port with Dovecot SASL, the policy service
and the milter of one real daemon; accepted mail is relayed to an SMTP sink. The
replies are asserted exactly, as the customer's client receives them.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
from collections.abc import Iterator

import pytest

from relayops.policyd import logsink
from support.policyd import rules_data
from support.processes import free_port, world_readable_tmpdir
from support.smtp_sink import SmtpSink
from support.submission import Submission, postfix, services

pytestmark = pytest.mark.real

PASSWORDS = {"acme-app": "acme-secret", "stark-app": "stark-secret"}
RULES = rules_data(
    # business: campaigns allowed, From: may use subdomains, more than 3 recipients is bulk
    acme={
        "plan": "business",
        "from_subdomains": True,
        "campaigns": "allowed",
        "campaign_recipients": 3,
    },
    # starter: no campaigns, From: exactly one of the domains
    stark={
        "name": "Stark",
        "plan": "starter",
        "from_subdomains": False,
        "campaigns": "forbidden",
        "campaign_recipients": 3,
        "logins": ["stark-app"],
        "domains": ["stark.example"],
    },
)
ONE_CLICK = (
    "List-Unsubscribe: <https://acme.example/u/42>, <mailto:unsub@acme.example?subject=42>\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
)


METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def relay() -> Iterator[tuple[Submission, SmtpSink]]:
    root = world_readable_tmpdir("relayops-milter-e2e-")
    sink = SmtpSink().start()
    metrics = ("--metrics", f"127.0.0.1:{METRICS_PORT}")
    try:
        with (
            services(root, RULES, PASSWORDS, daemon_args=metrics) as shared,
            postfix(root / "postfix-1", shared, milter=True, relay_port=sink.port) as submission,
        ):
            yield submission, sink
            time.sleep(2 * logsink.FLUSH_DELAY)  # every line of the last test written
            log = shared.daemon.log()
            assert "event=milter_protocol_error" not in log, log
    finally:
        sink.stop()
        shutil.rmtree(root, ignore_errors=True)


def send(
    relay: Submission, login: str, sender: str, headers: str, rcpts: int = 1
) -> tuple[int, str]:
    """One message on its own session: the reply to the end of DATA."""
    with relay.smtp(login) as client:
        assert client.mail(sender)[0] == 250
        for i in range(rcpts):
            assert client.rcpt(f"reader{i}@example.org")[0] == 250
        code, text = client.data((headers + "Subject: test\r\n\r\nhello\r\n").encode())
    return code, text.decode()


def accepted(code: int, text: str) -> bool:
    return code == 250 and text.startswith("2.0.0 Ok: queued as ")


def test_from_header_of_a_foreign_domain_is_refused_naming_the_allowed_ones(
    relay: tuple[Submission, SmtpSink],
) -> None:
    submission, _ = relay
    code, text = send(submission, "acme-app", "x@acme.example", "From: ceo@bank.example\r\n")
    assert (code, text) == (
        550,
        "5.7.1 From: domain bank.example is not one of acme's domains; "
        "use an address at acme-mail.example, acme.example or their subdomains",
    )
    # A display name that looks like the customer's address changes nothing.
    code, text = send(
        submission, "acme-app", "x@acme.example", 'From: "x@acme.example" <ceo@bank.example>\r\n'
    )
    assert code == 550 and text.startswith("5.7.1 From: domain bank.example is not one of")


def test_own_domain_and_allowed_subdomain_are_accepted(
    relay: tuple[Submission, SmtpSink],
) -> None:
    submission, sink = relay
    for header in (
        "From: Acme News <news@acme.example>\r\n",
        "From: news@NEWS.Acme.Example\r\n",  # from_subdomains: true on acme's plan
        "From: billing@acme-mail.example\r\n",
    ):
        code, text = send(submission, "acme-app", "bounce@acme.example", header)
        assert accepted(code, text), (header, code, text)
    arrived = sink.wait_for(3, timeout=30)
    assert sorted(m.message["From"] for m in arrived[-3:]) == sorted(
        ["Acme News <news@acme.example>", "news@NEWS.Acme.Example", "billing@acme-mail.example"]
    )


def test_subdomain_is_refused_when_the_plan_does_not_allow_it(
    relay: tuple[Submission, SmtpSink],
) -> None:
    submission, _ = relay
    code, text = send(
        submission, "stark-app", "a@stark.example", "From: news@mail.stark.example\r\n"
    )
    assert (code, text) == (
        550,
        "5.7.1 From: domain mail.stark.example is not one of stark's domains; "
        "use an address at stark.example",
    )
    code, text = send(submission, "stark-app", "a@stark.example", "From: a@stark.example\r\n")
    assert accepted(code, text)


def test_missing_and_multiple_from_have_their_own_replies(
    relay: tuple[Submission, SmtpSink],
) -> None:
    submission, _ = relay
    # Postfix adds no From: to a remote client's mail (always_add_missing_headers = no).
    code, text = send(submission, "acme-app", "x@acme.example", "To: reader0@example.org\r\n")
    assert (code, text) == (
        550,
        "5.6.0 the message has no From: header; add one with an address at your domain",
    )
    code, text = send(
        submission, "acme-app", "x@acme.example", "From: a@acme.example, b@acme.example\r\n"
    )
    assert (code, text) == (
        550,
        "5.6.0 the From: header has 2 addresses; put exactly one address in it (RFC 5322 3.6.2)",
    )


def test_campaign_needs_one_click_unsubscribe(relay: tuple[Submission, SmtpSink]) -> None:
    submission, _ = relay
    list_id = "From: news@acme.example\r\nList-Id: News <news.acme.example>\r\n"
    code, text = send(submission, "acme-app", "x@acme.example", list_id)
    assert (code, text) == (
        550,
        "5.7.1 bulk mail (it has a List-Id header) must offer one-click unsubscribe: "
        "add List-Unsubscribe: <https://...> (a mailto: URI may follow) and "
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    )
    # Only the link: the reply names the one header still missing.
    code, text = send(
        submission,
        "acme-app",
        "x@acme.example",
        list_id + "List-Unsubscribe: <https://acme.example/u/42>\r\n",
    )
    assert (code, text) == (
        550,
        "5.7.1 bulk mail (it has a List-Id header) must offer one-click unsubscribe: "
        "add List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    )
    code, text = send(submission, "acme-app", "x@acme.example", list_id + ONE_CLICK)
    assert accepted(code, text), text


def test_recipient_count_over_the_plans_threshold_makes_a_campaign(
    relay: tuple[Submission, SmtpSink],
) -> None:
    submission, _ = relay
    plain = "From: news@acme.example\r\n"
    assert accepted(*send(submission, "acme-app", "x@acme.example", plain, rcpts=3))
    code, text = send(submission, "acme-app", "x@acme.example", plain, rcpts=4)
    assert code == 550 and text.startswith(
        "5.7.1 bulk mail (it has 4 recipients, more than the 3 of plan business) "
        "must offer one-click unsubscribe: add List-Unsubscribe: "
    )
    assert accepted(*send(submission, "acme-app", "x@acme.example", plain + ONE_CLICK, rcpts=4))


def test_plan_without_campaigns_refuses_bulk_mail(relay: tuple[Submission, SmtpSink]) -> None:
    submission, _ = relay
    code, text = send(
        submission,
        "stark-app",
        "a@stark.example",
        "From: a@stark.example\r\nPrecedence: bulk\r\n" + ONE_CLICK,
    )
    assert (code, text) == (
        550,
        "5.7.1 plan starter of stark does not allow bulk mail and this message is bulk "
        "(it has Precedence: bulk); send one message per person, "
        "or ask for a plan that allows campaigns",
    )


def test_several_messages_on_one_session_are_judged_each(
    relay: tuple[Submission, SmtpSink],
) -> None:
    """Per-message state is reset at MAIL FROM: a refusal does not stick, nor an accept."""
    submission, _ = relay
    with submission.smtp("acme-app") as client:
        results = []
        for header in ("From: a@acme.example\r\n", "From: a@bank.example\r\n") * 2:
            client.mail("x@acme.example")
            client.rcpt("reader@example.org")
            code, _ = client.data((header + "\r\nbody\r\n").encode())
            results.append(code)
            if code != 250:
                client.rset()
    assert results == [250, 550, 250, 550]


def refusals_metric(reason: str) -> float:
    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    line = f'relayops_policyd_message_refusals_total{{reason="{reason}"}} '
    found = re.search(re.escape(line) + r"(\S+)", text)
    return float(found.group(1)) if found else 0.0


def test_refusals_are_counted_by_reason(relay: tuple[Submission, SmtpSink]) -> None:
    submission, _ = relay
    before = refusals_metric("from_domain"), refusals_metric("unsubscribe")
    assert send(submission, "acme-app", "x@acme.example", "From: a@bank.example\r\n")[0] == 550
    assert accepted(*send(submission, "acme-app", "x@acme.example", "From: a@acme.example\r\n"))
    assert (refusals_metric("from_domain"), refusals_metric("unsubscribe")) == (
        before[0] + 1,
        before[1],
    )
