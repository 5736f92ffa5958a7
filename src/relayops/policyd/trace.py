"""The relay's stamp on outgoing mail, `X-Relayops-Trace`, and its verification.

    X-Relayops-Trace: v=1; c=<customer>; l=<login>; q=<queue-id>; t=<unix-time>; h=<mac>

`mac` is base64url (no padding) of HMAC-SHA256 truncated to 16 bytes, computed with
the service key over the canonical text of the other fields, `v=1; c=…; l=…; q=…; t=…`
in that order. Bounces and complaints quote the original headers back to us, so the
stamp tells whose message it was; anyone can write such a header, so only a stamp
whose MAC verifies is trusted (docs/feedback.md). The stdlib `hmac` is the right tool
here: no library adds anything to a 16-byte MAC over a canonical string.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

HEADER = "X-Relayops-Trace"
VERSION = "1"
MAC_BYTES = 16  # 128 bits: ample against forgery, short enough for a header line

# Field syntax: what a customer id, login and Postfix queue id can be. Anything else
# makes the stamp unparseable (never "partly" trusted).
_FIELD_RE = {
    "c": re.compile(r"[a-z0-9][a-z0-9-]{0,62}"),
    "l": re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}"),
    "q": re.compile(r"[A-Za-z0-9]{1,32}"),
    "t": re.compile(r"[0-9]{1,12}"),
}
_MAC_RE = re.compile(r"[A-Za-z0-9_-]{22}")


class TraceFieldError(ValueError):
    """Raised by `make_trace` when a field has characters the stamp syntax forbids."""


@dataclass(frozen=True)
class Trace:
    """A parsed stamp; `verified` is True only when its MAC checked out with the key."""

    customer: str
    login: str
    queue_id: str
    time: int
    verified: bool


def _canonical(customer: str, login: str, queue_id: str, time: int) -> str:
    return f"v={VERSION}; c={customer}; l={login}; q={queue_id}; t={time}"


def _mac(key: bytes, text: str) -> str:
    digest = hmac.new(key, text.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_trace(*, customer: str, login: str, queue_id: str, time: int, key: bytes) -> str:
    """The header value the relay adds, e.g. `v=1; c=acme; l=acme-app; q=4XyZ; t=1764…; h=…`."""
    values = {"c": customer, "l": login, "q": queue_id, "t": str(time)}
    for name, value in values.items():
        if not _FIELD_RE[name].fullmatch(value):
            raise TraceFieldError(f"trace field {name}={value!r} has forbidden characters")
    text = _canonical(customer, login, queue_id, time)
    return f"{text}; h={_mac(key, text)}"


def parse_trace(header: str) -> dict[str, str] | None:
    """The stamp's fields if it is well-formed (v=1, every field once and valid), else None."""
    fields: dict[str, str] = {}
    for raw in header.replace("\r", " ").replace("\n", " ").split(";"):
        name, sep, value = raw.strip().partition("=")
        if not sep or name in fields:
            return None
        fields[name.strip()] = value.strip()
    if fields.get("v") != VERSION or set(fields) != {"v", "c", "l", "q", "t", "h"}:
        return None
    if not all(pattern.fullmatch(fields[name]) for name, pattern in _FIELD_RE.items()):
        return None
    if not _MAC_RE.fullmatch(fields["h"]):
        return None
    return fields


def verify_trace(header: str, key: bytes | None) -> Trace | None:
    """The stamp read from `header`, verified against `key` (None: cannot verify).

    Returns None for a malformed stamp; a well-formed one with a wrong MAC, or read
    without a key, comes back with `verified=False` and must not be trusted.
    """
    fields = parse_trace(header)
    if fields is None:
        return None
    time = int(fields["t"])
    verified = False
    if key:
        expected = _mac(key, _canonical(fields["c"], fields["l"], fields["q"], time))
        verified = hmac.compare_digest(expected.encode(), fields["h"].encode())
    return Trace(
        customer=fields["c"], login=fields["l"], queue_id=fields["q"], time=time, verified=verified
    )
