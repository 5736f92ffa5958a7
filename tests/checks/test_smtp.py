"""SMTP behaviour judgements on captured dialogues."""

from __future__ import annotations

from relayops.checks.result import Status
from relayops.checks.smtp import (
    LoginObservation,
    RelayObservation,
    SubmissionObservation,
    judge_login,
    judge_relay,
    judge_submission,
)
from relayops.checks.target import SenderLogin

S, G = "relay1.relay.test:25", "host relay1.relay.test"
RCPT = "relay-probe@example.com"
LOGIN = SenderLogin("acme", "acme-app", "pw", "acme.test", "victim.test")


def test_open_relay_is_an_error_with_the_fix() -> None:
    obs = RelayObservation((250, "2.1.0 Ok"), (250, "2.1.5 Ok"))
    result = judge_relay(S, G, RCPT, obs)
    assert result.status is Status.ERROR
    assert result.message == (
        "relay1.relay.test:25 is an open relay: it accepted RCPT TO:<relay-probe@example.com> "
        "from an unauthenticated client (250 2.1.5 Ok); set smtpd_relay_restrictions = "
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination and keep "
        "mynetworks to the relay's own addresses."
    )


def test_relay_refused_deferred_and_untestable() -> None:
    denied = RelayObservation((250, "Ok"), (554, "5.7.1 <x>: Relay access denied"))
    assert judge_relay(S, G, RCPT, denied).status is Status.OK
    deferred = RelayObservation((250, "Ok"), (450, "4.7.1 try later"))
    assert judge_relay(S, G, RCPT, deferred).status is Status.WARNING
    no_mail = RelayObservation((530, "5.7.0 Must issue a STARTTLS command first"), None)
    assert judge_relay(S, G, RCPT, no_mail).status is Status.WARNING


def test_a_submission_port_may_refuse_unauthenticated_mail_at_mail_from() -> None:
    null = (554, "5.7.1 <>: Sender address rejected: a null sender is for bounces")
    on_587 = judge_relay(
        "relay1.relay.test:587", G, RCPT, RelayObservation(null, None), submission=True
    )
    assert (on_587.status, on_587.message) == (
        Status.OK,
        "relay1.relay.test:587 refuses unauthenticated clients already at MAIL FROM "
        "(554 5.7.1 <>: Sender address rejected: a null sender is for bounces).",
    )
    # Port 25 must take bounces: the same refusal there leaves relaying unprobed.
    assert judge_relay(S, G, RCPT, RelayObservation(null, None)).status is Status.WARNING
    # A temporary refusal proves nothing, on any port.
    busy = RelayObservation((451, "4.3.0 try later"), None)
    assert judge_relay(S, G, RCPT, busy, submission=True).status is Status.WARNING


def test_auth_before_starttls_and_size() -> None:
    obs = SubmissionObservation(
        {"auth": "PLAIN LOGIN", "size": "31457280", "starttls": ""},
        {"auth": "PLAIN LOGIN", "size": "10240000"},
    )
    results = judge_submission("r:587", G, obs, 31457280)
    assert [r.status for r in results] == [Status.ERROR, Status.ERROR]
    assert results[0].message == (
        "r:587 offers AUTH PLAIN LOGIN before STARTTLS, so passwords can cross the network "
        "in clear; set smtpd_tls_auth_only = yes."
    )
    assert results[1].message == (
        "r:587 advertises SIZE 10240000, the plan expects 31457280 bytes; "
        "set message_size_limit = 31457280."
    )
    good = SubmissionObservation({"size": "31457280"}, {"auth": "PLAIN", "size": "31457280"})
    assert all(r.status is Status.OK for r in judge_submission("r:587", G, good, 31457280))
    no_tls = judge_submission("r:587", G, SubmissionObservation({}, None), None)
    assert no_tls[1].status is Status.ERROR and "does not offer STARTTLS" in no_tls[1].message


def test_login_confined_to_own_domains() -> None:
    good = LoginObservation((235, "ok"), (250, "ok"), (553, "5.7.1 not owned by user acme-app"))
    assert judge_login(S, "customer acme", LOGIN, good).status is Status.OK
    leaky = LoginObservation((235, "ok"), (250, "ok"), (250, "2.1.5 Ok"))
    result = judge_login(S, "customer acme", LOGIN, leaky)
    assert result.status is Status.ERROR
    assert "let acme-app send from victim.test, a domain it does not own" in result.message
    refused = LoginObservation((535, "5.7.8 authentication failed"), None, None)
    assert "check the test credentials" in judge_login(S, "c", LOGIN, refused).message
    all_refused = LoginObservation((235, "ok"), (553, "no"), (553, "no"))
    assert judge_login(S, "c", LOGIN, all_refused).status is Status.WARNING
