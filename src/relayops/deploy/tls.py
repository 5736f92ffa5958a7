"""Where a relay's certificate goes; the certificates of `relayops_tls: lab-ca` come from
relayops.labca (LabCA is re-exported for relayops/deploy/testing.py, the pytest harness)."""

from __future__ import annotations

from relayops.hostlayout import TLS_CERT, TLS_KEY
from relayops.labca import LabCA

CERT_PATH = TLS_CERT
KEY_PATH = TLS_KEY

__all__ = ["CERT_PATH", "KEY_PATH", "LabCA"]
