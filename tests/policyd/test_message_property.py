"""Properties of the message checks: garbage never crashes, a foreign From: never passes."""

from __future__ import annotations

import base64
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from relayops.policyd.message_checks import FromAddress, Message, Problem, judge, parse_from
from relayops.policyd.rules import Customer, parse_rules
from support.policyd import rules_data

# The most permissive customer: subdomains allowed, campaigns allowed.
ACME: Customer = parse_rules(
    rules_data(acme={"plan": "business", "from_subdomains": True, "campaign_recipients": 50})
).customers["acme"]
OWNED = sorted(ACME.domains)  # acme-mail.example, acme.example
REPLY = re.compile(r"5\d\d 5\.\d\.\d [^\r\n]+")

header_names = st.sampled_from(
    ["From", "from", "FROM", "To", "Subject", "List-Id", "Precedence", "List-Unsubscribe",
     "List-Unsubscribe-Post", "Sender", "Reply-To"]
)  # fmt: skip
# Text as Postfix hands it over: any code point, decoded from bytes with replacement.
header_values = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")),
    st.lists(
        st.sampled_from(
            ["x", "@", "acme.example", "bank.example", "<", ">", '"', "\\", "(", ")", ",",
             ":", ";", " ", "\r\n ", "\t", ".", "=?utf-8?q?", "?=", "[", "]", "\x00", "é"]
        ),
        max_size=30,
    ).map("".join),
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    headers=st.lists(st.tuples(header_names, header_values), max_size=8),
    recipients=st.integers(min_value=0, max_value=2000),
)
def test_any_headers_get_a_verdict_never_an_exception(
    headers: list[tuple[str, str]], recipients: int
) -> None:
    verdict = judge(Message(headers, recipients), ACME)
    if verdict is not None:
        assert REPLY.fullmatch(verdict.reply), verdict.reply
        assert len(verdict.reply.encode()) <= 510


@settings(max_examples=600, deadline=None)
@given(value=header_values)
def test_an_accepted_from_names_an_owned_domain_after_an_at_sign(value: str) -> None:
    found = parse_from([value])
    verdict = judge(Message([("From", value)], 1), ACME)
    if verdict is None:
        assert isinstance(found, FromAddress)
        domain = found.domain
        assert any(domain == d or domain.endswith("." + d) for d in OWNED)
        if value.isascii():
            assert "@" + domain in value.lower()


# ---- foreign mailboxes in every legal disguise -------------------------------------------

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
foreign_domains = (
    st.lists(labels, min_size=2, max_size=4)
    .map(".".join)
    .filter(lambda d: not any(d == o or d.endswith("." + o) for o in OWNED))
)
local_parts = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}", fullmatch=True)
# What a forger writes around the real mailbox: the customer's address, as text.
bait = st.sampled_from(
    ["x@acme.example", "acme.example", "news@mail.acme.example", "<x@acme.example>",
     "@acme.example", "x@acme-mail.example"]
)  # fmt: skip
free_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    escaped = "".join("\\" + c if c in "()\\" else c for c in text)
    return "(" + escaped + ")"


def _encoded(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


@st.composite
def disguised_foreign_from(draw: st.DrawFn) -> str:
    mailbox = f"{draw(local_parts)}@{draw(foreign_domains)}"
    text = draw(bait) + draw(free_text).replace("\r", "").replace("\n", "")
    form = draw(st.sampled_from(["quoted", "encoded", "comment", "route", "bare"]))
    if form == "quoted":
        return f"{_quoted(text)} <{mailbox}>"
    if form == "encoded":
        return f"{_encoded(text)} <{mailbox}>"
    if form == "comment":
        return f"{mailbox} {_comment(text)}"
    if form == "route":
        return f"<@{draw(st.sampled_from(OWNED))}:{mailbox}>"
    return mailbox


@settings(max_examples=800, deadline=None)
@given(value=disguised_foreign_from(), fold=st.booleans())
def test_a_foreign_mailbox_is_never_accepted(value: str, fold: bool) -> None:
    if fold:
        value = value.replace(" ", "\r\n ", 1)
    verdict = judge(Message([("From", value)], 1), ACME)
    assert verdict is not None, value
    assert verdict.problem in (Problem.FROM_DOMAIN, Problem.FROM_MALFORMED), verdict
