"""Bounces that carry no RFC 3464 report: the MTA's own text (Exim, qmail, Gmail,
Yahoo, OpenSMTPD, Office 365 …) → (address, reply block) pairs.

Hand-written because no maintained library returns the reply *per recipient*
(flufl.bounce returns addresses only, and added nothing here: docs/feedback.md).
The approach is generic, not per vendor: cut the notification off where the
returned message begins, find the recipient addresses that start a line (the
layout every MTA uses to list them), and take each one's reply as the text that
follows it up to the next recipient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relayops.feedback.reply import find_smtp_code, find_status

ADDRESS = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
_ADDRESS_RE = re.compile(ADDRESS)

# Where the returned message starts inside a text bounce (the wording of Exim, qmail,
# Postfix, Gmail, Office 365, OpenSMTPD, Courier, Sendmail…), lower-cased.
_ORIGINAL_MARKERS = re.compile(
    r"^\s*(-{2,}|={2,}|\*{2,})?\s*("
    r"this is a copy of the message|below this line is a copy|original message"
    r"|the header of the original message|returned message|original message headers"
    r"|below is a copy of the original|message headers follow|undelivered message"
    r"|unsent message|headers of your message|included is a copy|the original message"
    r"|your message reads|text of the message|copy of your message|returned mail"
    r")(?! was received)",  # Sendmail opens with "The original message was received at"
    re.IGNORECASE | re.MULTILINE,
)
# A recipient listed by the MTA: the address opens the line, after blanks, list or
# quote marks ("*", "-", ">>>", "> " of a forwarded bounce) or a field-like label
# ("RCPT To:", "Recipient address:"), and is followed by anything that is not part of
# an address (end of line, ':', '>', '...', ' [User unknown]', ' Invalid Address, …').
_LISTED_RE = re.compile(
    r"^(?:[ \t]*(?:>+|\*|-|•)(?=[ \t<\"']))*[ \t]*"
    r"(?:(?:In:[ \t]*)?RCPT To:|Recipient address:|Original-Recipient:|To:)?"
    r"[ \t]*[<\"'(]?"
    rf"({ADDRESS})(?![A-Za-z0-9.-])",
    re.IGNORECASE | re.MULTILINE,
)
# Words that show a text is a non-delivery notice rather than a person's mail.
BOUNCE_PHRASES = re.compile(
    r"could not be delivered|couldn.t be delivered|undeliver|delivery (has )?failed"
    r"|failed permanently|permanent (error|failure|fatal)|not be delivered|delivery failure"
    r"|unable to deliver|wasn.t able to deliver|delivery to the following recipient"
    r"|following address(es)? failed|returned to sender|mail delivery (failed|system)"
    r"|delivery status notification|has been delayed|temporary failure|not yet been delivered"
    r"|error occurred while attempting to deliver|delivery to .{0,80} failed"
    r"|failed to deliver|message you sent .{0,40}(could not|was not)",
    re.IGNORECASE,
)
NOT_RECIPIENT_LOCALPARTS = frozenset({"mailer-daemon", "postmaster", "root", "noreply"})


@dataclass(frozen=True)
class TextRecipient:
    address: str
    block: str  # the notification text about this recipient


def notification_text(text: str) -> tuple[str, str]:
    """(the MTA's notification, the returned message after it) of a text bounce."""
    match = _ORIGINAL_MARKERS.search(text)
    if match is None:
        return text, ""
    line_end = text.find("\n", match.end())
    rest = text[line_end + 1 :] if line_end >= 0 else ""
    return text[: match.start()], rest


def _is_mta_address(address: str, excluded: frozenset[str]) -> bool:
    local = address.split("@", 1)[0].lower()
    return address.lower() in excluded or local in NOT_RECIPIENT_LOCALPARTS


def listed_recipients(
    notification: str, *, excluded: frozenset[str] = frozenset()
) -> list[TextRecipient]:
    """Each recipient the notification lists, with its block of text; `excluded`
    addresses (the bounce's own From/To) never count."""
    starts: list[tuple[int, int, str]] = []
    for match in _LISTED_RE.finditer(notification):
        address = match.group(1).rstrip(".")
        if not _is_mta_address(address, excluded):
            starts.append((match.start(1), match.end(1), address))
    blocks: dict[str, list[str]] = {}
    order: list[str] = []
    for i, (_, end, address) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(notification)
        # A line that repeats the same address ends nothing: keep looking past it.
        block = notification[end:stop]
        key = address.lower()
        if key not in blocks:
            blocks[key] = []
            order.append(address)
        blocks[key].append(block)
    result: list[TextRecipient] = []
    for address in order:
        candidates = blocks[address.lower()]
        # The occurrence that carries a reply code is the diagnostic one (Office 365
        # lists each address twice: once in prose, once with the remote reply).
        with_code = [b for b in candidates if find_status(b) or find_smtp_code(b)]
        block = with_code[0] if with_code else candidates[0]
        result.append(TextRecipient(address=address, block=block))
    return result


def is_bounce_text(text: str) -> bool:
    return BOUNCE_PHRASES.search(text) is not None


def addresses_in(text: str) -> list[str]:
    return [m.group(0).rstrip(".") for m in _ADDRESS_RE.finditer(text)]
