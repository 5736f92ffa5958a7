"""Where a relay's certificate goes; the certificates of `relayops_tls: lab-ca` come from
relayops.labca."""

from __future__ import annotations

from relayops.hostlayout import TLS_CA, TLS_CERT, TLS_KEY
from relayops.labca import LabCA

CERT_PATH = TLS_CERT
KEY_PATH = TLS_KEY
CA_PATH = TLS_CA  # the CA alone: ?ca= of a rediss:// store URL

__all__ = ["CA_PATH", "CERT_PATH", "KEY_PATH", "LabCA"]
