"""The milter's pure decision: headers + recipient count + customer rules -> reply (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from relayops.policyd.message_checks import (
    FromAddress,
    Message,
    Problem,
    Refusal,
    judge,
    parse_from,
    unsubscribe_missing,
)
from relayops.policyd.rules import Customer, RulesError, parse_rules
from support.policyd import rules_data

ONE_CLICK = [
    ("List-Unsubscribe", "<https://acme.example/u/42>, <mailto:u@acme.example>"),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
]


def customer(**changes: Any) -> Customer:
    fields = {"plan": "business", "campaign_recipients": 3, **changes}
    return parse_rules(rules_data(acme=fields)).customers["acme"]


def message(*headers: tuple[str, str], recipients: int = 1) -> Message:
    return Message(list(headers), recipients)


def reply(msg: Message, who: Customer) -> str | None:
    verdict = judge(msg, who)
    return None if verdict is None else verdict.reply


# ---- policy.json: the new fields -----------------------------------------------------------


def test_policy_json_fields_reach_the_customer() -> None:
    c = customer(plan="starter", from_subdomains=True, campaigns="forbidden")
    assert (c.plan, c.from_subdomains, c.campaigns_allowed, c.campaign_recipients) == (
        "starter",
        True,
        False,
        3,
    )


def test_a_file_from_before_the_fields_reads_with_the_defaults() -> None:
    data = rules_data()  # support's RULES have none of the four fields
    c = parse_rules(data).customers["acme"]
    assert (c.plan, c.from_subdomains, c.campaigns_allowed, c.campaign_recipients) == (
        "",
        False,
        True,
        50,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("campaigns", "sometimes", "customers.acme.campaigns: Input should be 'allowed' or"),
        ("campaign_recipients", 0, "customers.acme.campaign_recipients: Input should be greater"),
        ("from_subdomains", "perhaps", "customers.acme.from_subdomains: Input should be a valid"),
    ],
)
def test_invalid_milter_fields_are_refused_by_name(field: str, value: Any, message: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(rules_data(acme={field: value}))
    assert message in str(info.value)


# ---- From: ---------------------------------------------------------------------------------


def test_own_domain_is_accepted_in_any_case_and_form() -> None:
    acme = customer()
    for value in (
        "news@acme.example",
        "Acme News <news@ACME.example>",
        '"Acme, Inc." <x@acme-mail.example>',
        "=?utf-8?q?Acme_=C3=A9?= <x@acme.example>",
        "news@acme.example (newsletter)",
        "news@acme.example\r\n\t",  # folded trailing whitespace
    ):
        assert reply(message(("From", value)), acme) is None, value


def test_foreign_domain_is_refused_naming_the_allowed_domains() -> None:
    assert reply(message(("From", "ceo@bank.example")), customer()) == (
        "550 5.7.1 From: domain bank.example is not one of acme's domains; "
        "use an address at acme-mail.example, acme.example"
    )


def test_subdomain_is_accepted_only_when_the_plan_allows_it() -> None:
    msg = message(("From", "news@mail.acme.example"))
    assert reply(msg, customer()) == (
        "550 5.7.1 From: domain mail.acme.example is not one of acme's domains; "
        "use an address at acme-mail.example, acme.example"
    )
    assert reply(msg, customer(from_subdomains=True)) is None
    # A lookalike is not a subdomain: "xacme.example" does not end in ".acme.example".
    assert reply(message(("From", "a@xacme.example")), customer(from_subdomains=True)) == (
        "550 5.7.1 From: domain xacme.example is not one of acme's domains; "
        "use an address at acme-mail.example, acme.example or their subdomains"
    )
    # Nor is a parent of the customer's domain.
    assert reply(message(("From", "a@example")), customer(from_subdomains=True)) is not None


@pytest.mark.parametrize(
    "value",
    [
        '"x@acme.example" <ceo@bank.example>',
        "=?utf-8?q?x=40acme.example?= <ceo@bank.example>",
        "ceo@bank.example (x@acme.example)",
        "<@acme.example:ceo@bank.example>",
    ],
)
def test_the_customers_address_outside_the_mailbox_changes_nothing(value: str) -> None:
    verdict = judge(message(("From", value)), customer(from_subdomains=True))
    assert verdict is not None and verdict.problem in (Problem.FROM_DOMAIN, Problem.FROM_MALFORMED)


@pytest.mark.parametrize(
    "value",
    [
        # The stdlib parser "recovers" these as acme.example; a reader may see bank.example.
        "x@acme.example <ceo@bank.example>",
        "x@acme.example x@bank.example",
        "ceo@bank.example@acme.example",
        "x@acme(c).example",
        "<x@acme.example",
        "x@",
        "@",
        "x@[192.0.2.1]",
        "x@acme.example\x00",
        "x@acme.example.",
    ],
)
def test_broken_from_is_refused_not_guessed(value: str) -> None:
    verdict = judge(message(("From", value)), customer())
    assert verdict is not None and verdict.problem is Problem.FROM_MALFORMED, value
    assert verdict.reply.startswith("550 5.6.0 the From: header ")
    assert verdict.reply.endswith(
        " is not one valid address (RFC 5322); write it as Name <user@your-domain>"
    )


def test_malformed_reply_quotes_the_header_safely_and_briefly() -> None:
    verdict = judge(
        message(("From", "x@acme.example <" + "y" * 300 + "@bank.example>")), customer()
    )
    assert verdict is not None
    assert verdict.reply == (
        "550 5.6.0 the From: header 'x@acme.example <"
        + "y" * 61
        + "...' is not one valid address (RFC 5322); write it as Name <user@your-domain>"
    )
    bad = judge(message(("From", "a\r\nb@acme.example")), customer())
    assert bad is not None and "\r" not in bad.reply and "\n" not in bad.reply


def test_missing_and_multiple_from_have_their_own_replies() -> None:
    acme = customer()
    assert reply(message(("To", "a@example.org")), acme) == (
        "550 5.6.0 the message has no From: header; add one with an address at your domain"
    )
    assert reply(message(("From", "a@acme.example"), ("from", "b@acme.example")), acme) == (
        "550 5.6.0 the message has 2 From: headers; RFC 5322 allows exactly one"
    )
    assert reply(message(("From", "a@acme.example, b@acme.example")), acme) == (
        "550 5.6.0 the From: header has 2 addresses; put exactly one address in it (RFC 5322 3.6.2)"
    )
    for empty in ("", "   ", "undisclosed-recipients:;"):
        assert reply(message(("From", empty)), acme) == (
            "550 5.6.0 the From: header has no address; put one address at your domain in it"
        ), empty


def test_idn_domain_is_compared_in_its_ascii_form() -> None:
    who = parse_rules(rules_data(acme={"domains": ["xn--bcher-kva.example"]})).customers["acme"]
    assert parse_from(["a@bücher.example"]) == FromAddress("xn--bcher-kva.example")
    assert reply(message(("From", "Bücher <a@bücher.example>")), who) is None


# ---- campaigns -----------------------------------------------------------------------------


def test_not_a_campaign_needs_no_unsubscribe_up_to_the_threshold() -> None:
    acme = customer()
    assert reply(message(("From", "a@acme.example"), recipients=3), acme) is None
    assert reply(message(("From", "a@acme.example"), ("Precedence", "junk")), acme) is None


@pytest.mark.parametrize(
    ("headers", "recipients", "marker"),
    [
        ([("List-Id", "<news.acme.example>")], 1, "it has a List-Id header"),
        ([("Precedence", " Bulk ")], 1, "it has Precedence: bulk"),
        ([("precedence", "list")], 1, "it has Precedence: list"),
        ([], 4, "it has 4 recipients, more than the 3 of plan business"),
    ],
)
def test_campaign_without_one_click_is_refused_naming_the_headers(
    headers: list[tuple[str, str]], recipients: int, marker: str
) -> None:
    msg = message(("From", "a@acme.example"), *headers, recipients=recipients)
    assert reply(msg, customer()) == (
        f"550 5.7.1 bulk mail ({marker}) must offer one-click unsubscribe: add "
        "List-Unsubscribe: <https://...> (a mailto: URI may follow) and "
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    )
    with_both = message(("From", "a@acme.example"), *headers, *ONE_CLICK, recipients=recipients)
    assert reply(with_both, customer()) is None


def test_each_missing_one_click_part_is_named_alone() -> None:
    def missing(*headers: tuple[str, str]) -> str | None:
        return unsubscribe_missing(message(*headers))

    post = ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    assert missing(("List-Unsubscribe", "<https://a.example/u>")) == (
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    )
    assert missing(post) == "List-Unsubscribe: <https://...> (a mailto: URI may follow)"
    # RFC 8058 3.1: the one-click POST goes to an https URI; a mailto alone is not enough.
    assert missing(("List-Unsubscribe", "<mailto:u@a.example>"), post) == (
        "an https: URI to List-Unsubscribe, e.g. <https://...>: "
        "one-click unsubscribe posts to it (RFC 8058 3.1)"
    )
    assert missing(("List-Unsubscribe", "https://a.example/u"), post) == (
        "List-Unsubscribe: <https://...> (a mailto: URI may follow)"
    )  # RFC 2369: URIs are in angle brackets
    assert missing(("List-Unsubscribe", "<HTTPS://a.example/u>"), post) is None
    assert missing(
        ("List-Unsubscribe", "<https://a.example/u>"), ("List-Unsubscribe-Post", "Yes")
    ) == ("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    assert missing(("List-Unsubscribe", "<https://a.example/u>"), post, post) == (
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    )
    assert missing(("List-Unsubscribe", "<mailto:u@a.example>,\r\n <https://a/u>"), post) is None


def test_forbidden_campaigns_are_refused_even_with_one_click() -> None:
    starter = customer(plan="starter", campaigns="forbidden")
    msg = message(("From", "a@acme.example"), ("List-Id", "<x>"), *ONE_CLICK)
    verdict = judge(msg, starter)
    assert verdict == Refusal(
        Problem.CAMPAIGN_FORBIDDEN,
        "550 5.7.1 plan starter of acme does not allow bulk mail and this message is bulk "
        "(it has a List-Id header); send one message per person, "
        "or ask for a plan that allows campaigns",
    )
    assert reply(message(("From", "a@acme.example"), recipients=3), starter) is None


def test_from_is_checked_before_the_campaign_rules() -> None:
    msg = message(("From", "a@bank.example"), ("List-Id", "<x>"))
    verdict = judge(msg, customer(campaigns="forbidden"))
    assert verdict is not None and verdict.problem is Problem.FROM_DOMAIN


def test_every_reply_fits_one_smtp_line() -> None:
    many = [f"d{i:03d}-long-customer-domain-name.example" for i in range(100)]
    who = parse_rules(rules_data(acme={"domains": many})).customers["acme"]
    verdict = judge(message(("From", "a@bank.example")), who)
    assert verdict is not None and len(verdict.reply.encode()) <= 510  # RFC 5321 4.5.3.1.5
