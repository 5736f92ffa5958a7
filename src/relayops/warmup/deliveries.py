"""The output instances' delivery lines (relayops.backoff.deliveries, which the relay's
back-off watcher reads too): re-exported under the name warm-up's modules use."""

from relayops.backoff.deliveries import OTHER_CLASS, Delivery, Status, parse_line, read_maillog

__all__ = ["OTHER_CLASS", "Delivery", "Status", "parse_line", "read_maillog"]
