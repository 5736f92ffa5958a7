"""Moved to relayops.lab.publish (lab-only). Kept for the pytest harness in
relayops/deploy/testing.py until it imports relayops.lab.publish itself."""

from relayops.lab.publish import lab_zones, publishable

__all__ = ["lab_zones", "publishable"]
