"""The service's own mail checked with independent verifiers against the lab DNS
(the `lab_dns` fixture of conftest.py points them there).

dkimpy, pyspf and authheaders' DMARC, not relayops' own check code: shared by the tests of
the 80 % warning (test_receivers.py) and of every notice kind (test_notices_delivered.py).
"""

from __future__ import annotations

import re

import authheaders
import dkim
import spf

from relayops.lab.arf import reported
from relayops.lab.sink import Arrived

SERVICE = "relay.example.net"


def assert_service_authenticated(arrived: Arrived) -> str:
    """Assert DKIM (d=<service>), SPF and aligned DMARC pass for a message the sink stored
    from the service; the relay address that delivered it (for the caller to pin)."""
    raw = arrived.path.read_bytes()
    facts = reported(raw)
    helo = re.match(r"from (\S+) ", str(arrived.message.get_all("Received", [])[0]))
    assert helo is not None
    # DKIM (dkimpy): signed by the service domain with its own key, verified against lab DNS.
    assert dkim.verify(raw), "dkimpy: the DKIM signature does not verify"
    signature = str(arrived.message["DKIM-Signature"])
    assert f"d={SERVICE};" in "".join(signature.split()), signature
    # SPF (pyspf): the relay address that delivered it is authorised for noreply@.
    result, _ = spf.check2(i=facts.source_ip, s=facts.mail_from, h=helo.group(1))
    assert result == "pass", (result, facts.source_ip, facts.mail_from)
    # DMARC (authheaders): aligned on both.
    header = authheaders.authenticate_message(
        raw, "isp.lab", spf=True, dkim=True, dmarc=True,
        ip=facts.source_ip, mail_from=facts.mail_from, helo=helo.group(1),
    )  # fmt: skip
    assert 'spf=pass reason="sender SPF authorized"' in header, header
    assert f"smtp.mailfrom={SERVICE}" in header, header
    assert f"dkim=pass header.d={SERVICE}" in header, header
    assert f"dmarc=pass (Used From Domain Record) header.from={SERVICE}" in header, header
    assert "policy.dmarc=reject" in header, header
    return str(facts.source_ip)
