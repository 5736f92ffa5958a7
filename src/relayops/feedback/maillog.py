"""The relay's own delivery failures, read from Postfix's log (pure parser + tracker).

A remote server that refuses a recipient during the relay's SMTP session produces no
bounce we receive as mail from it: Postfix logs

    postfix/smtpd[..]: 4XyZab12: client=app.acme.example[203.0.113.5], sasl_method=PLAIN,
        sasl_username=acme-app
    postfix/qmgr[..]: 4XyZab12: from=<news@acme.example>, size=1234, nrcpt=1 (queue active)
    postfix/smtp[..]: 4XyZab12: to=<gone@receiver.example>, relay=mx.receiver.example[..]:25,
        delay=0.5, delays=.., dsn=5.1.1, status=bounced (host mx.receiver.example[..] said:
        550 5.1.1 <gone@receiver.example>: User unknown (in reply to RCPT TO command))

and sends a bounce to the customer. `Tracker` follows the queue IDs through those
lines and yields a `Failure` per bounced recipient: whose (the SASL login of the
smtpd line; else the sender domain of the qmgr line), the address, the status and
the remote reply, classified with the same tables as mailed bounces. `status=deferred`
lines are not failures (Postfix retries). The parser never raises on a line.

Every Postfix instance is read alike: the program tag is `<syslog_name>/<program>`,
where syslog_name is `postfix`, `postfix/submission`, an output instance's
`postfix-ip-<egress>` or its class transport's `postfix-ip-<egress>/isp-<class>`
(compile/instances.py). An output instance received the message over loopback from
the submission instance, under a new queue ID and without the SASL login: there the
qmgr line's envelope sender names the customer (ingest.failure_customer).

A failure's at-most-once key (`failure_key`) is its queue ID and recipient, not the
line: Postfix logs one final `status=bounced` per recipient and queue file, and the
DSN that Postfix sends about it carries the same queue ID (`X-Postfix-Queue-ID`), so a
copy of that DSN forwarded to the bounce address is recognised as already recorded.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from relayops.feedback.classify import classify, is_hard
from relayops.feedback.model import Reason

_LINE = re.compile(
    r"(?:^|\s)postfix[\w.-]*(?:/[\w.-]+)*/(?P<daemon>smtpd|qmgr|smtp|lmtp|cleanup|error)"
    r"\[\d+\]: (?P<qid>[0-9A-Za-z]{6,32}): (?P<rest>.*)$"
)
# What a log line looks like at all: a timestamp (traditional syslog or RFC 3339), a host
# and a program tag. Anything else (a cut line, binary noise) is garbage: kept, not read.
_SHAPE = re.compile(
    r"^(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) "
    r"\S+ [\w./-]+(?:\[\d+\])?: \S"
)
_LOGIN = re.compile(r"\bsasl_username=(?P<login>[^,\s]+)")
_FROM = re.compile(r"^from=<(?P<sender>[^>]*)>")
_BOUNCED = re.compile(
    r"^to=<(?P<rcpt>[^>]*)>,.*?\bdsn=(?P<dsn>[245]\.\d{1,3}\.\d{1,3}), "
    r"status=bounced \((?P<text>.*)\)\s*$"
)
_SAID = re.compile(r"\bsaid: (?P<reply>.*?)(?: \(in reply to [^)]*\))?$")
MAX_TRACKED = 100_000  # queue IDs remembered (oldest forgotten): bounded memory


@dataclass(frozen=True)
class Failure:
    """One recipient the relay could not deliver, as its log says."""

    queue_id: str
    login: str | None
    sender: str | None
    address: str  # lower-case
    status: str
    reply: str  # the remote reply, or Postfix's own words when there was none
    reason: Reason
    hard: bool
    digest: str  # failure_key(queue_id, address): recording it twice is a no-op


def failure_key(queue_id: str, address: str) -> str:
    """The ledger's at-most-once key of one recipient refused in one queue file: the same
    for the log line and for the DSN Postfix wrote about it."""
    text = f"relay-failure {queue_id} {address.lower()}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def is_garbage(line: str) -> bool:
    """A line that is no log line, or a `status=bounced` line this parser cannot read:
    the follower keeps it for review (a log the relay wrote should have none)."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return False
    if any((ord(c) < 32 and c != "\t") or "\udc80" <= c <= "\udcff" for c in text):
        return True  # control characters, or bytes that were no UTF-8 (surrogateescape)
    if _SHAPE.match(text) is None:
        return True
    return "status=bounced" in text and _bounced(text) is None


def _bounced(line: str) -> re.Match[str] | None:
    match = _LINE.search(line)
    if match is None or match["daemon"] not in ("smtp", "lmtp", "error"):
        return None
    return _BOUNCED.match(match["rest"])


class Tracker:
    """Feed lines in order; bounced recipients come out with their customer's login."""

    def __init__(self, *, max_tracked: int = MAX_TRACKED) -> None:
        self.max_tracked = max_tracked
        self._logins: OrderedDict[str, str] = OrderedDict()
        self._senders: OrderedDict[str, str] = OrderedDict()

    def _remember(self, table: OrderedDict[str, str], qid: str, value: str) -> None:
        table[qid] = value
        table.move_to_end(qid)
        while len(table) > self.max_tracked:
            table.popitem(last=False)

    def feed(self, line: str) -> Failure | None:
        match = _LINE.search(line.rstrip("\r\n"))
        if match is None:
            return None
        qid, daemon, rest = match["qid"], match["daemon"], match["rest"]
        if daemon == "smtpd":
            login = _LOGIN.search(rest)
            if login:
                self._remember(self._logins, qid, login["login"])
            return None
        if daemon in ("qmgr", "cleanup"):
            sender = _FROM.match(rest)
            if sender:
                self._remember(self._senders, qid, sender["sender"])
            return None
        bounced = _BOUNCED.match(rest)
        if bounced is None:
            return None
        text = bounced["text"]
        said = _SAID.search(text)
        reply = said["reply"] if said else text
        status = bounced["dsn"]
        reason = classify(reply, status, context=text)
        return Failure(
            queue_id=qid,
            login=self._logins.get(qid),
            sender=self._senders.get(qid),
            address=bounced["rcpt"].lower(),
            status=status,
            reply=reply[:1000],
            reason=reason,
            hard=is_hard(reason, permanent=status.startswith("5")),
            digest=failure_key(qid, bounced["rcpt"]),
        )

    def failures(self, lines: Iterable[str]) -> Iterator[Failure]:
        for line in lines:
            failure = self.feed(line)
            if failure is not None:
                yield failure
