"""Mail through the deployed example repository: signed delivery, refused logins."""

from __future__ import annotations

import smtplib

import pytest

from e2e.mailflow import send, submission
from relayops.deploy.testing import Deployed
from relayops.lab.mail import message, submit, verify_dkim

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("relay", ["relay1", "relay2"])
def test_customer_mail_arrives_dkim_signed(deployed: Deployed, relay: str) -> None:
    subject, refused = send(deployed, relay, "acme-app", "app@acme.example", ("e2e@isp.lab",))
    assert refused == {}
    arrived = deployed.lab.sink.wait_for(lambda a: a.message["Subject"] == subject, timeout=60)
    checked = verify_dkim(arrived.path.read_bytes(), deployed.lab.topology.dns.address)
    assert (checked.valid, checked.domain, checked.selector) == (True, "acme.example", "rly2026")
    assert arrived.recipient == "e2e@isp.lab"


def test_suspended_customer_login_is_refused(deployed: Deployed) -> None:
    sub = submission(deployed, "relay1", "hooli", "a@hooli.example", ("e2e@isp.lab",))
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        submit(sub, message(sub.sender, sub.recipients, "must not leave", "x\n"))
    assert caught.value.smtp_code == 535


def test_sender_domain_of_another_customer_is_refused(deployed: Deployed) -> None:
    with pytest.raises(smtplib.SMTPException) as caught:
        send(deployed, "relay1", "acme-app", "x@globex.example", ("e2e@isp.lab",))
    assert "globex.example" in str(caught.value) or "not owned" in str(caught.value)
