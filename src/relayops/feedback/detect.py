"""flufl.bounce (GNU Mailman's bounce detectors) as a second opinion on *which*
addresses bounced, for MTA text formats our generic listing misses."""

from __future__ import annotations

from flufl.bounce import scan_message

from relayops.feedback.parse import PARSE_ERRORS, parse_bytes


def flufl_addresses(data: bytes) -> frozenset[str]:
    """The addresses flufl.bounce's detectors report, decoded; empty on any failure."""
    message = parse_bytes(data).message
    try:
        found = scan_message(message)
    except (*PARSE_ERRORS, KeyError, RuntimeError):
        return frozenset()
    out = set()
    for item in found:
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        text = text.strip().strip("<>")
        # Some detectors return JSON fragments or empty strings: keep real addresses.
        if text.count("@") == 1 and " " not in text and '"' not in text and len(text) < 254:
            local, _, domain = text.partition("@")
            if local and "." in domain:
                out.add(text)
    return frozenset(out)
