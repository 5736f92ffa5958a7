"""A remote reply (text, enhanced status, SMTP code) → a `Reason`, and whether it is hard.

No library classifies SMTP replies, so this is ours: data tables, read in order.

1. `STRONG_PATTERNS`: phrases that name the cause unambiguously ("user unknown",
   "mailbox full", "spamhaus", "dmarc") win over everything, because receivers
   often send a generic status (5.0.0, 5.7.1, 550) with a precise text.
2. `STATUS_DETAIL`: the RFC 3463 subject.detail (plus the vendor codes Microsoft and
   others document, e.g. 5.7.606 banned IP) when the text said nothing precise.
3. `WEAK_PATTERNS`: generic words ("rejected", "blocked", "timed out") as a last clue.
4. `STATUS_CLASS`: the RFC 3463 subject alone (x.1 address, x.2 mailbox, …).

Patterns are lower-case regular expressions searched in the lower-cased reply.
`hard` is true only for a permanent failure whose reason says the address itself is
dead (`HARD_REASONS`): a reputation or policy block, a full mailbox or a temporary
"user unknown" never suppresses a recipient.
"""

from __future__ import annotations

import re

from relayops.feedback.model import HARD_REASONS, Reason

R = Reason

STRONG_PATTERNS: tuple[tuple[Reason, str], ...] = (
    # The sender's IP or domain is refused whatever the recipient: never the list's fault.
    (R.REPUTATION, r"spamhaus|spamcop|barracuda|sorbs|dnsbl|\brbl\b|blacklist|blocklist"),
    (R.REPUTATION, r"black list|block list|(?<!not )listed (at|on|in|by)|is listed|reputation"),
    (R.REPUTATION, r"(ip|address|host|server) (address )?(is |has been )?(banned|blocked)"),
    (R.REPUTATION, r"banned sending ip|sender ip|because of your ip|your ip|dynamic ip"),
    (R.REPUTATION, r"residential|dial-?up|smtp server of your isp|not accept.* from your ip"),
    (R.REPUTATION, r"user complaints|\[ts0\d\]|\[tss0\d\]|unsolicited mail originating"),
    (R.REPUTATION, r"reverse (dns|lookup|hostname)|\bptr\b|rdns|cannot find your hostname"),
    (R.REPUTATION, r"hostname .{0,40}(does not resolve|lookup failed)|no ptr"),
    (R.AUTH_FAILURE, r"\bspf\b|\bdkim\b|\bdmarc\b|sender policy framework|unauthenticated"),
    (R.AUTH_FAILURE, r"authentication (check )?fail|not pass authentication|sender-id"),
    (R.RATE_LIMITED, r"too many (connections|messages|recipients|concurrent)|rate limit"),
    (R.RATE_LIMITED, r"rate-limit|throttl|slow down|too fast|unusual rate|sending rate"),
    (R.RATE_LIMITED, r"receiving mail at a rate|connection limit|exceeded .{0,30}limit"),
    (
        R.MAILBOX_FULL,
        r"mailbox (is )?full|full mailbox|quota|mailbox size|storage (space )?"
        r"(exceeded|full)|inbox is full|exceeded storage|mailbox has exceeded|out of storage"
        r"|mailfolder is full|user is over",
    ),
    (
        R.TOO_BIG,
        r"too (big|large)|size (limit|exceeded)|message size|exceeds? .{0,30}size"
        r"|message length exceeds|mesg too big",
    ),
    # The receiver's local delivery program failed ("Command output: procmail: … No such
    # user" is about the program's spool file, not the address).
    (R.SYSTEM, r"command output|procmail|pipe to \||local delivery program"),
    # Postfix's words for a DNS lookup that failed temporarily (SERVFAIL), not NXDOMAIN.
    (R.NETWORK, r"not found, try again"),
    (R.MOVED, r"has moved|moved to|no longer (at|available at|uses)|address changed"),
    (
        R.DOMAIN_UNKNOWN,
        r"host (or domain name )?(unknown|not found)|unknown host"
        r"|domain (name )?(not found|does not exist|doesn't exist|is not valid)|no such domain"
        r"|unknown domain|unrouteable mail domain|nxdomain|name or service not known"
        r"|not accept(ing)? (any )?(e-?mail|mail)|accepts no mail|null mx|no smtp service"
        r"|(couldn.t|could not|cannot|can.t) find a mail exchanger"
        r"|mx records point to non-existent hosts|domain name lookup failed|no mx",
    ),
    (
        R.MAILBOX_DISABLED,
        r"(account|mailbox|user) (is |has been )?(disabled|inactive"
        r"|suspended|deactivated|locked|expired|frozen|not active)|inactive (user|account|mailbox)"
        r"|temporarily deactivated|account (is )?unavailable"
        r"|temporar\w* (locked|disabled|suspended|deactivated)|(account|mailbox) (is )?blocked",
    ),
    (
        R.USER_UNKNOWN,
        r"user unknown|unknown user|no such (user|mailbox|recipient|person)"
        r"|(user|recipient|mailbox|address|account) (not found|does not exist|doesn't exist"
        r"|unknown)|unknown (recipient|local|address|mailbox)|recipientnotfound"
        r"|invalid (recipient|mailbox|address)|not a valid (mailbox|recipient|user)"
        r"|unrouteable address|addressee unknown|does not exist|doesn't exist|isn't a known"
        r"|wasn.t found at|not a known user|no mailbox|mailbox unavailable|user not exist"
        r"|(mailbox|account) (name )?not (found|available)|no account by that name"
        r"|recipient address rejected: (user|undeliverable)|bad destination mailbox"
        r"|(doesn.t|does not) have an? .{0,40}account|not listed in .{0,40}(directory|address book)"
        r"|no valid recipients?|invalid .{0,20}userid|no mailbox here",
    ),
    (
        R.SPAM_CONTENT,
        r"spam|junk|unsolicited|bulk mail|virus|malware|phish|content (filter"
        r"|rejected)|message content|suspicious|dangerous|blocked content|spam score"
        r"|because (of )?its content|(its|the) content presents",
    ),
    (
        R.EXPIRED,
        r"expired|retry time(out)? (not reached|exceeded)|could not be delivered "
        r"within|too long in (the )?queue|gave up|has been delayed|delivery delayed|not yet been "
        r"delivered|undeliverable for|was not delivered within|queue lifetime|retry timeout"
        r"|giving up|after multiple retries",
    ),
    (
        R.NETWORK,
        r"connection (refused|timed out|reset|closed|lost)|timed out|timeout"
        r"|no route to host|network is unreachable|host unreachable|lost connection"
        r"|temporary failure in name resolution|name server|dns (error|failure|lookup)"
        r"|mail loop|loops back to myself|too many hops|could not connect|unable to connect"
        r"|requests to connect|\btls\b|certificate|\bssl\b|not reachable|unreachable"
        r"|(host ?name|dns) lookup fail",
    ),
    (
        R.PROTOCOL,
        r"syntax error|command unrecognized|bad sequence|line too long"
        r"|rfc ?5322|rfc ?2822|rfc ?822|not (rfc[- ]?)?compliant|missing .{0,20}header"
        r"|message-id|duplicate header|header (is )?malformed|multiple addresses in from"
        r"|protocol violation|not implemented|command parameter",
    ),
    (
        R.POLICY,
        r"relay (access )?denied|relaying denied|not permitted to relay|relay not "
        r"permitted|unable to relay|we do not relay|not allowed to relay",
    ),
    (
        R.SYSTEM,
        r"system error|internal error|local (configuration|delivery) error|mailer error"
        r"|temporary local problem|insufficient system storage"
        r"|out of memory|disk full|system (is )?full|file system full|insufficient disk space",
    ),
)

# Exact `subject.detail` of RFC 3463 status codes (and documented vendor details).
STATUS_DETAIL: dict[str, Reason] = {
    "1.0": R.USER_UNKNOWN,  # other address status: the recipient address was refused
    "1.1": R.USER_UNKNOWN,
    "1.2": R.DOMAIN_UNKNOWN,
    "1.3": R.USER_UNKNOWN,  # bad destination mailbox syntax: the address can never work
    "1.6": R.MOVED,
    "1.7": R.POLICY,  # bad sender mailbox syntax: our side, not the recipient's
    "1.8": R.POLICY,  # bad sender's system address
    "1.10": R.USER_UNKNOWN,  # RFC 7505 null MX / Microsoft RecipientNotFound
    "2.1": R.MAILBOX_DISABLED,
    "2.2": R.MAILBOX_FULL,
    "2.3": R.TOO_BIG,
    "2.4": R.SYSTEM,
    "3.1": R.SYSTEM,
    "3.4": R.TOO_BIG,
    "4.1": R.NETWORK,
    "4.2": R.NETWORK,
    "4.3": R.NETWORK,
    "4.4": R.NETWORK,
    "4.5": R.SYSTEM,
    "4.6": R.NETWORK,
    "4.7": R.EXPIRED,
    "7.1": R.POLICY,
    "7.9": R.POLICY,
    "7.13": R.MAILBOX_DISABLED,
    "7.23": R.AUTH_FAILURE,
    "7.24": R.AUTH_FAILURE,
    "7.25": R.REPUTATION,  # RFC 7372: reverse DNS validation failed
    "7.26": R.AUTH_FAILURE,
    "7.27": R.POLICY,  # RFC 7505: the sender's domain has a null MX
    "7.28": R.RATE_LIMITED,
    "7.509": R.AUTH_FAILURE,  # Microsoft: DMARC reject
    "7.606": R.REPUTATION,  # Microsoft: banned sending IP
    "7.650": R.REPUTATION,  # Microsoft: IP blocked (reputation)
    "7.708": R.REPUTATION,
}

WEAK_PATTERNS: tuple[tuple[Reason, str], ...] = (
    (R.REPUTATION, r"\bblocked\b|access denied|not authorized to send"),
    (R.POLICY, r"polic|prohibited|not allowed|refused|rejected|denied|not accepted"),
    (
        R.SYSTEM,
        r"service (is )?(temporarily )?(unavailable|not available)|try again later"
        r"|temporar",
    ),
)

STATUS_CLASS: dict[str, Reason] = {
    "1": R.USER_UNKNOWN,
    "3": R.SYSTEM,
    "4": R.NETWORK,
    "5": R.PROTOCOL,
    "6": R.PROTOCOL,
    "7": R.POLICY,
}

_STRONG = tuple((reason, re.compile(p)) for reason, p in STRONG_PATTERNS)
_WEAK = tuple((reason, re.compile(p)) for reason, p in WEAK_PATTERNS)


# The refusal was about our envelope sender, not the recipient (RFC 3463 x.1.7 / x.1.8,
# an MTA saying it happened at MAIL FROM): never a reason to suppress the recipient.
SENDER_STAGE = re.compile(
    r"after mail from|sender address rejected|\bsender rejected"
    r"|sender (domain|address) (not found|unknown|rejected|does not exist)"
    r"|mail from:? ?<[^>]*>:? .{0,20}rejected|bad sender"
)
SENDER_STATUS_DETAILS = frozenset({"1.7", "1.8"})
# A refusal at the end of DATA: the receiver had accepted the recipient at RCPT TO, so
# an "unknown user" then is a content filter's answer, not a dead address.
# (Not Sendmail's ">>> DATA" transcript line: with PIPELINING the RCPT refusals arrive
# after it, and "503 Need RCPT" follows.)
DATA_STAGE = re.compile(r"(in reply to|after) (the )?(end of )?data\b")


def classify(reply: str, status: str | None, *, context: str = "") -> Reason:
    """The reason class of one recipient's failure (see the module docstring).

    `reply` is the remote reply; `context` the MTA's words around it, read only to
    tell a refusal of our sender from one of the recipient."""
    reason = _classify(reply, status)
    if reason in HARD_REASONS:
        detail = status.partition(".")[2] if status else ""
        text = (context + "\n" + reply).lower()
        if detail in SENDER_STATUS_DETAILS or SENDER_STAGE.search(text):
            return R.POLICY
        if DATA_STAGE.search(text):
            return R.POLICY
    return reason


def _classify(reply: str, status: str | None) -> Reason:
    if status and status.startswith("2"):
        return R.DELIVERED
    text = reply.lower()
    for reason, pattern in _STRONG:
        if pattern.search(text):
            return reason
    if status:
        _, _, detail = status.partition(".")
        if detail in STATUS_DETAIL:
            return STATUS_DETAIL[detail]
    for reason, pattern in _WEAK:
        if pattern.search(text):
            return reason
    if status:
        subject = status.split(".")[1] if status.count(".") == 2 else ""
        if subject in STATUS_CLASS and not status.endswith(".0.0"):
            return STATUS_CLASS[subject]
    return R.UNKNOWN


def is_hard(reason: Reason, *, permanent: bool) -> bool:
    """Suppress the address only when it is dead: a permanent failure of a hard reason."""
    return permanent and reason in HARD_REASONS
