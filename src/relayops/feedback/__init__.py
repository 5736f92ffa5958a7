"""Reading bounces and complaint reports: `read_report(bytes) -> Report` (pure), the
relay's trace stamp (`make_trace`, `verify_trace`) and `relayops feedback read`."""

from relayops.feedback.model import Kind, Origin, Reason, Recipient, Report
from relayops.feedback.reader import read_report
from relayops.feedback.trace import Trace, make_trace, verify_trace

__all__ = [
    "Kind",
    "Origin",
    "Reason",
    "Recipient",
    "Report",
    "Trace",
    "make_trace",
    "read_report",
    "verify_trace",
]
