"""Mail through the deployed example repository: signed delivery, refused logins."""

from __future__ import annotations

import smtplib

import pytest
import yaml

from e2e.mailflow import send, submission
from relayops.lab.demo import lab_password
from relayops.lab.mail import message, submit, verify_dkim
from support.deployed import EXAMPLE, Deployed

pytestmark = pytest.mark.lab

# The policy daemon, asked at MAIL FROM before reject_sender_login_mismatch, names the
# domains the customer may send from.
FOREIGN_SENDER_REPLY = (
    b"5.7.1 <x@globex.example>: Sender address rejected: sender domain globex.example is "
    b"not registered for acme; use an address at acme-mail.example, acme.example"
)


@pytest.mark.parametrize("relay", ["relay1", "relay2"])
def test_customer_mail_arrives_dkim_signed(deployed: Deployed, relay: str) -> None:
    subject, refused = send(deployed, relay, "acme-app", "app@acme.example", ("e2e@isp.lab",))
    assert refused == {}
    arrived = deployed.lab.sink.wait_for(lambda a: a.message["Subject"] == subject, timeout=60)
    checked = verify_dkim(arrived.path.read_bytes(), deployed.lab.topology.dns.address)
    assert (checked.valid, checked.domain, checked.selector) == (True, "acme.example", "rly2026")
    assert arrived.recipient == "e2e@isp.lab"


AUTH_FAILED = b"5.7.8 Error: authentication failed: (reason unavailable)"


def _password_hash(login: str) -> str:
    """The login's hash as the repository holds it (customers/<id>.yaml)."""
    for path in sorted((EXAMPLE / "customers").glob("*.yaml")):
        for user in yaml.safe_load(path.read_text(encoding="utf-8")).get("users", []):
            if user["login"] == login:
                return str(user["password"])
    raise AssertionError(f"no login {login} in {EXAMPLE / 'customers'}")


def test_suspended_customer_login_is_refused(deployed: Deployed) -> None:
    """Refused because the customer is suspended, not because the password is wrong: the
    password sent is the one the repository's hash verifies, and the relay's passdb holds
    active logins only (acme-app yes, hooli no)."""
    password = lab_password(EXAMPLE, "hooli")
    status, out, err = deployed.lab.run(
        "relay1", f"doveadm pw -t '{_password_hash('hooli')}' -p '{password}'"
    )
    assert (status, out.strip()) == (0, f"{_password_hash('hooli')} (verified)"), err
    status, out, _ = deployed.lab.run(
        "relay1", "cut -d: -f1 /etc/dovecot/relayops-users | grep -xE 'hooli|acme-app'"
    )
    assert (status, out.split()) == (0, ["acme-app"])
    sub = submission(deployed, "relay1", "hooli", "a@hooli.example", ("e2e@isp.lab",))
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        submit(sub, message(sub.sender, sub.recipients, "must not leave", "x\n"))
    assert (caught.value.smtp_code, caught.value.smtp_error) == (535, AUTH_FAILED)


def test_sender_domain_of_another_customer_is_refused(deployed: Deployed) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused) as caught:
        send(deployed, "relay1", "acme-app", "x@globex.example", ("e2e@isp.lab",))
    assert (caught.value.smtp_code, caught.value.smtp_error) == (553, FOREIGN_SENDER_REPLY)
