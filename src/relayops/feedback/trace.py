"""The relay's stamp: defined in `relayops.policyd.trace` (the daemon adds it to every
submitted message and the relays carry only the daemon's package); re-exported here
for the reader."""

from relayops.policyd.trace import (
    HEADER,
    MAC_BYTES,
    VERSION,
    Trace,
    TraceFieldError,
    make_trace,
    parse_trace,
    verify_trace,
)

__all__ = [
    "HEADER",
    "MAC_BYTES",
    "VERSION",
    "Trace",
    "TraceFieldError",
    "make_trace",
    "parse_trace",
    "verify_trace",
]
