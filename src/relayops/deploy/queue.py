"""The host's Postfix queues as `postqueue -j` prints them: one JSON object per message.

Only the sender matters here (whose mail is still on the host). The probe appends
`relayops-rc=<exit status>`; a failed `postqueue` or a line that is not a message is a
QueueError, and the caller then treats the queue as unknown: nothing waiting on it is
removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

RC_PREFIX = "relayops-rc="
# Every Postfix instance's queue: the submission instance and each output instance
# (compile/instances.py) hold a customer's mail in turn. postmulti(1) exits non-zero if
# any instance's postqueue does, so one unreadable queue makes the whole queue unknown.
COMMAND = f"postmulti -x postqueue -j 2>/dev/null; echo {RC_PREFIX}$?"


class QueueError(Exception):
    """The queue could not be read; the message says why."""


@dataclass(frozen=True)
class Queued:
    queue_id: str
    queue_name: str  # maildrop, incoming, active, deferred, hold
    sender: str  # "" for a bounce


class _Message(BaseModel):
    # postqueue(1) documents more fields (arrival_time, recipients...); they are not needed.
    model_config = ConfigDict(extra="ignore")
    queue_id: str
    queue_name: str
    sender: str


def parse_queue(lines: Iterable[str]) -> list[Queued]:
    """The messages of `postqueue -j` output followed by the `relayops-rc=` line.

    >>> parse_queue(['{"queue_id": "4A1", "queue_name": "hold", "sender": "a@b.example"}',
    ...              'relayops-rc=0'])
    [Queued(queue_id='4A1', queue_name='hold', sender='a@b.example')]
    """
    messages: list[Queued] = []
    status: str | None = None
    for line in lines:
        if not line.strip():
            continue
        if line.startswith(RC_PREFIX):
            status = line[len(RC_PREFIX) :].strip()
            continue
        if status is not None:
            raise QueueError("output after the exit status line")
        try:
            item = _Message.model_validate_json(line)
        except ValidationError:
            raise QueueError(f"not a postqueue -j message: {line[:80]!r}") from None
        messages.append(Queued(item.queue_id, item.queue_name, item.sender))
    if status != "0":
        raise QueueError(f"postqueue -j exited with status {status or 'unknown'}")
    return messages


def sender_domain(sender: str) -> str:
    """The ASCII, lower-case domain of an envelope sender ("" for a bounce).

    >>> sender_domain("Ops@Bücher-Soylent.example")
    'xn--bcher-soylent-wob.example'
    """
    domain = sender.rpartition("@")[2].rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain  # matches no customer domain, which are all valid IDNA


def queued_per_customer(
    messages: Iterable[Queued], customers: Mapping[str, Iterable[str]]
) -> dict[str, int]:
    """How many queued messages each customer sent (by envelope sender domain)."""
    owner = {domain: customer for customer, domains in customers.items() for domain in domains}
    counts = dict.fromkeys(customers, 0)
    for message in messages:
        customer = owner.get(sender_domain(message.sender))
        if customer is not None:
            counts[customer] += 1
    return counts
