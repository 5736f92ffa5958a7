"""The milter's decision: a message's headers and recipient count against its customer's rules.

Pure: no socket, no clock. `judge()` takes what the milter collected for one message
(`Message`) and the sending login's `Customer` and returns the SMTP reply to give at
end-of-headers, or None to let the message through (docs/milter.md).

Two checks, in this order:

1. The ``From:`` header (RFC 5322 3.6.2: exactly one, one mailbox) is at one of the
   customer's domains, or a subdomain of one when the plan says ``from_subdomains``.
   DMARC aligns on this header, and recipients see it: binding only the envelope sender
   to the login would let ``acme`` send as ``ceo@bank.example`` with a valid signature.
2. A campaign — ``List-Id``, ``Precedence: bulk|list``, or more recipients than the
   plan's ``campaign_recipients`` — is refused on a plan that forbids campaigns, and
   otherwise must offer one-click unsubscribe: ``List-Unsubscribe`` with an ``https:``
   URI and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058, which the
   Gmail and Yahoo 2024 bulk-sender rules require).

Address parsing is the standard library's RFC 5322 parser (`email.headerregistry`).
It recovers from broken syntax by guessing, and a guess can name a different domain
than a mail reader shows (``x@acme.example <ceo@bank.example>`` parses as acme), so
any defect it reports refuses the message instead of trusting the guess.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import AddressHeader, HeaderRegistry
from typing import Final

from relayops.policyd.rules import Customer

# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; quoted values are cut well below.
_MAX_QUOTED: Final = 80
_LABEL: Final = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_FOLD: Final = re.compile(r"\r?\n(?=[ \t])")
# RFC 2369 2: "a list of one or more URLs, each enclosed in angle brackets, separated by commas".
_BRACKETED: Final = re.compile(r"<([^<>]*)>")
ONE_CLICK: Final = "List-Unsubscribe=One-Click"  # RFC 8058 3.1, the only value defined
_BULK_PRECEDENCE: Final = frozenset({"bulk", "list"})

_registry = HeaderRegistry()
# The only headers judge() reads (lower-case): the milter keeps these and drops the rest.
READ_HEADERS: Final = frozenset(
    {"from", "list-id", "precedence", "list-unsubscribe", "list-unsubscribe-post"}
)


class Problem(enum.StrEnum):
    """Why a message was refused (log field)."""

    FROM_MISSING = "from_missing"
    FROM_MULTIPLE = "from_multiple"
    FROM_MALFORMED = "from_malformed"
    FROM_DOMAIN = "from_domain"
    CAMPAIGN_FORBIDDEN = "campaign_forbidden"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Message:
    """What the milter saw of one message up to the end of its headers."""

    # (name, value as sent, folding kept), in order; the milter keeps READ_HEADERS only
    headers: Sequence[tuple[str, str]]
    recipients: int  # RCPT TO accepted by Postfix (it hides the refused ones from milters)

    def values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for n, v in self.headers if n.lower() == wanted]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal: `reply` is the full SMTP reply, e.g. ``550 5.7.1 ...``."""

    problem: Problem
    reply: str


def shown(text: str) -> str:
    """Outside text made safe to quote in a one-line reply."""
    cleaned = " ".join("".join(c if c.isprintable() else "?" for c in text).split())
    return cleaned if len(cleaned) <= _MAX_QUOTED else cleaned[: _MAX_QUOTED - 3] + "..."


def _unfold(value: str) -> str:
    return _FOLD.sub("", value)


def ascii_domain(domain: str) -> str | None:
    """Lower-case ASCII form of a host name, None if it is not one (a literal, garbage)."""
    text = domain.lower()
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = text.split(".")
    if len(text) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        return None
    return text


@dataclass(frozen=True, slots=True)
class FromAddress:
    """The one mailbox of a well-formed From: header."""

    domain: str  # lower-case ASCII


def parse_from(values: Sequence[str]) -> FromAddress | Refusal:
    """The From: header's domain, or the refusal for a missing, multiple or broken one."""
    if not values:
        return Refusal(
            Problem.FROM_MISSING,
            "550 5.6.0 the message has no From: header; add one with an address at your domain",
        )
    if len(values) > 1:
        return Refusal(
            Problem.FROM_MULTIPLE,
            f"550 5.6.0 the message has {len(values)} From: headers; RFC 5322 allows exactly one",
        )
    return _parse_one(values[0])


# A sending application writes the same few From: values again and again; the stdlib
# parser costs about 90 us a value. Pure function of the text, so a bounded cache is exact.
@functools.lru_cache(maxsize=4096)
def _parse_one(value: str) -> FromAddress | Refusal:
    raw = _unfold(value)
    if not raw.strip():
        return _no_address()
    try:
        header = _registry("from", raw)
        assert isinstance(header, AddressHeader)  # the registry's class for "from"
        defects = header.defects
        addresses = header.addresses
    except Exception:  # the stdlib parser raises untyped errors (IndexError on "x@")
        return _malformed(raw)
    if defects:
        return _malformed(raw)
    if not addresses:
        return _no_address()
    if len(addresses) > 1:
        return Refusal(
            Problem.FROM_MULTIPLE,
            f"550 5.6.0 the From: header has {len(addresses)} addresses; "
            "put exactly one address in it (RFC 5322 3.6.2)",
        )
    domain = ascii_domain(addresses[0].domain)
    # Belt and braces against parser guesses: the domain must be written after an "@".
    if domain is None or not addresses[0].username:
        return _malformed(raw)
    if "@" + addresses[0].domain.lower() not in raw.lower():
        return _malformed(raw)
    return FromAddress(domain)


def _no_address() -> Refusal:
    return Refusal(
        Problem.FROM_MISSING,
        "550 5.6.0 the From: header has no address; put one address at your domain in it",
    )


def _malformed(raw: str) -> Refusal:
    return Refusal(
        Problem.FROM_MALFORMED,
        f"550 5.6.0 the From: header {shown(raw)!r} is not one valid address (RFC 5322); "
        "write it as Name <user@your-domain>",
    )


def owns(customer: Customer, domain: str) -> bool:
    """Whether a From: domain belongs to the customer (a subdomain only if the plan allows)."""
    if domain in customer.domains:
        return True
    if not customer.from_subdomains:
        return False
    return any(domain.endswith("." + own) for own in customer.domains)


def allowed_text(customer: Customer) -> str:
    """The allowed From: domains as a refusal names them."""
    listed = customer.owned_domains_text
    return f"{listed} or their subdomains" if customer.from_subdomains else listed


def campaign_marker(message: Message, customer: Customer) -> str | None:
    """What makes the message a campaign, as the refusal names it; None if it is not one."""
    if message.values("List-Id"):
        return "it has a List-Id header"
    for value in message.values("Precedence"):
        word = _unfold(value).strip().lower()
        if word in _BULK_PRECEDENCE:
            return f"it has Precedence: {word}"
    if message.recipients > customer.campaign_recipients:
        return (
            f"it has {message.recipients} recipients, more than the "
            f"{customer.campaign_recipients} of plan {customer.plan or '(unnamed)'}"
        )
    return None


def unsubscribe_missing(message: Message) -> str | None:
    """What the message lacks for RFC 8058 one-click unsubscribe, as an instruction."""
    uris = [
        uri.strip()
        for value in message.values("List-Unsubscribe")
        for uri in _BRACKETED.findall(_unfold(value))
    ]
    has_https = any(uri.lower().startswith("https:") for uri in uris)
    posts = [_unfold(v).strip() for v in message.values("List-Unsubscribe-Post")]
    one_click = len(posts) == 1 and posts[0] == ONE_CLICK
    need: list[str] = []
    if not uris:
        need.append("List-Unsubscribe: <https://...> (a mailto: URI may follow)")
    elif not has_https:
        need.append(
            "an https: URI to List-Unsubscribe, e.g. <https://...>: "
            "one-click unsubscribe posts to it (RFC 8058 3.1)"
        )
    if not one_click:
        need.append(f"List-Unsubscribe-Post: {ONE_CLICK}")
    return " and ".join(need) if need else None


def judge(message: Message, customer: Customer) -> Refusal | None:
    """The end-of-headers verdict for one message of `customer`; None lets it through."""
    found = parse_from(message.values("From"))
    if isinstance(found, Refusal):
        return found
    if not owns(customer, found.domain):
        return Refusal(
            Problem.FROM_DOMAIN,
            f"550 5.7.1 From: domain {shown(found.domain)} is not one of {customer.id}'s "
            f"domains; use an address at {allowed_text(customer)}",
        )
    marker = campaign_marker(message, customer)
    if marker is None:
        return None
    if not customer.campaigns_allowed:
        return Refusal(
            Problem.CAMPAIGN_FORBIDDEN,
            f"550 5.7.1 plan {customer.plan or '(unnamed)'} of {customer.id} does not allow "
            f"bulk mail and this message is bulk ({marker}); send one message per person, "
            "or ask for a plan that allows campaigns",
        )
    missing = unsubscribe_missing(message)
    if missing is None:
        return None
    return Refusal(
        Problem.UNSUBSCRIBE,
        f"550 5.7.1 bulk mail ({marker}) must offer one-click unsubscribe: add {missing}",
    )
