"""Ports and SMTP behaviour: reachability, no AUTH before STARTTLS on 587, the advertised
SIZE, no open relay, and logins confined to their own sender domains.

Probes stop at RCPT TO and reset: no DATA is ever sent, so no mail leaves the relay.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

from relayops.checks.parallel import gather
from relayops.checks.probe import (
    EHLO_NAME,
    ProbeError,
    close_smtp,
    insecure_context,
    open_smtp,
    tcp_reachable,
)
from relayops.checks.result import CheckResult, error, ok, warning
from relayops.checks.target import CheckTarget, HostTarget, SenderLogin

PORTS = "ports"
RELAY = "relay"

Reply = tuple[int, str]


def _reply(code: int, text: bytes | str) -> Reply:
    message = text.decode(errors="replace") if isinstance(text, bytes) else text
    return code, " ".join(message.split())


# --- submission (587) before and after STARTTLS ------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmissionObservation:
    """EHLO keywords (lower-case -> parameters) before and after STARTTLS."""

    before_tls: dict[str, str]
    after_tls: dict[str, str] | None  # None: STARTTLS not offered or failed


def _features(smtp: smtplib.SMTP) -> dict[str, str]:
    return {k: v.strip() for k, v in smtp.esmtp_features.items()}


def probe_submission(
    address: str, fqdn: str, port: int, *, timeout: float = 10.0
) -> SubmissionObservation:
    smtp = open_smtp(address, fqdn, port, timeout=timeout)
    try:
        smtp.ehlo(EHLO_NAME)
        before = _features(smtp)
        after: dict[str, str] | None = None
        if smtp.has_extn("starttls"):
            smtp.starttls(context=insecure_context())
            smtp.ehlo(EHLO_NAME)
            after = _features(smtp)
        return SubmissionObservation(before, after)
    except (OSError, smtplib.SMTPException) as exc:
        raise ProbeError(f"SMTP dialogue with {address}:{port} failed: {exc}") from exc
    finally:
        close_smtp(smtp)


def judge_submission(
    subject: str, group: str, obs: SubmissionObservation, expected_size: int | None
) -> list[CheckResult]:
    results: list[CheckResult] = []
    if "auth" in obs.before_tls:
        results.append(
            error(
                RELAY,
                group,
                f"{subject} AUTH before STARTTLS",
                f"{subject} offers AUTH {obs.before_tls['auth']} before STARTTLS, so "
                "passwords can cross the network in clear; set smtpd_tls_auth_only = yes.",
            )
        )
    else:
        results.append(
            ok(
                RELAY,
                group,
                f"{subject} AUTH before STARTTLS",
                f"{subject} offers no AUTH before STARTTLS.",
            )
        )
    if obs.after_tls is None:
        results.append(
            error(
                RELAY,
                group,
                f"{subject} STARTTLS",
                f"{subject} does not offer STARTTLS; set smtpd_tls_security_level = encrypt "
                "on the submission service.",
            )
        )
    elif "auth" not in obs.after_tls:
        results.append(
            warning(
                RELAY,
                group,
                f"{subject} AUTH after STARTTLS",
                f"{subject} offers no AUTH even after STARTTLS, so customers cannot log in; "
                "set smtpd_sasl_auth_enable = yes on the submission service.",
            )
        )
    if expected_size is not None:
        features = obs.after_tls if obs.after_tls is not None else obs.before_tls
        raw = features.get("size", "").strip()
        if raw.isdigit() and int(raw) == expected_size:
            results.append(ok(RELAY, group, f"{subject} SIZE", f"{subject} advertises SIZE {raw}."))
        else:
            shown = f"SIZE {raw}" if raw else "no SIZE"
            results.append(
                error(
                    RELAY,
                    group,
                    f"{subject} SIZE",
                    f"{subject} advertises {shown}, the plan expects {expected_size} bytes; "
                    f"set message_size_limit = {expected_size}.",
                )
            )
    return results


# --- open relay --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelayObservation:
    mail: Reply
    rcpt: Reply | None  # None when MAIL FROM was already refused


def probe_relay(
    address: str,
    fqdn: str,
    port: int,
    *,
    recipient: str,
    starttls: bool,
    implicit_tls: bool = False,
    timeout: float = 10.0,
) -> RelayObservation:
    """Unauthenticated MAIL FROM:<> then RCPT TO:<outside recipient>, then RSET."""
    smtp = open_smtp(address, fqdn, port, implicit_tls=implicit_tls, timeout=timeout)
    try:
        smtp.ehlo(EHLO_NAME)
        if starttls and smtp.has_extn("starttls"):
            smtp.starttls(context=insecure_context())
            smtp.ehlo(EHLO_NAME)
        mail = _reply(*smtp.mail(""))
        rcpt = _reply(*smtp.rcpt(recipient)) if mail[0] // 100 == 2 else None
        smtp.rset()
        return RelayObservation(mail, rcpt)
    except (OSError, smtplib.SMTPException) as exc:
        raise ProbeError(f"SMTP dialogue with {address}:{port} failed: {exc}") from exc
    finally:
        close_smtp(smtp)


def judge_relay(
    subject: str,
    group: str,
    recipient: str,
    obs: RelayObservation,
    *,
    submission: bool = False,
) -> CheckResult:
    """`submission`: a 587/465 port, where refusing an unauthenticated MAIL FROM outright
    (RFC 6409 lets an MSA require AUTH first) proves more than a refused RCPT; port 25
    must take the null sender (bounces), so there a refusal leaves relaying unprobed."""
    sub = f"{subject} open relay"
    if obs.rcpt is None:
        code, text = obs.mail
        if submission and code // 100 == 5:
            return ok(
                RELAY,
                group,
                sub,
                f"{subject} refuses unauthenticated clients already at MAIL FROM ({code} {text}).",
            )
        return warning(
            RELAY,
            group,
            sub,
            f"{subject} refused MAIL FROM:<> ({code} {text}), so relaying could not be "
            "probed; accept the null sender (RFC 5321 4.5.5) and rerun.",
        )
    code, text = obs.rcpt
    if code // 100 == 2:
        return error(
            RELAY,
            group,
            sub,
            f"{subject} is an open relay: it accepted RCPT TO:<{recipient}> from an "
            f"unauthenticated client ({code} {text}); set smtpd_relay_restrictions = "
            "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination and "
            "keep mynetworks to the relay's own addresses.",
        )
    if code // 100 == 4:
        return warning(
            RELAY,
            group,
            sub,
            f"{subject} deferred RCPT TO:<{recipient}> ({code} {text}) instead of refusing "
            "it; a temporary answer does not prove relaying is denied, rerun later.",
        )
    return ok(RELAY, group, sub, f"{subject} refuses to relay for outsiders ({code} {text}).")


# --- sender ownership of an authenticated login ------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginObservation:
    auth: Reply
    own: Reply | None  # RCPT reply with MAIL FROM in the login's own domain
    foreign: Reply | None  # ... and in a domain it does not own


def _try_sender(smtp: smtplib.SMTP, sender: str, recipient: str) -> Reply:
    mail = _reply(*smtp.mail(sender))
    result = mail if mail[0] // 100 != 2 else _reply(*smtp.rcpt(recipient))
    smtp.rset()
    return result


def _authenticate(smtp: smtplib.SMTP, login: SenderLogin) -> tuple[int, bytes]:
    """AUTH PLAIN when offered: one attempt. smtplib's login() would retry a refused
    password with every other mechanism, each paying the server's failure delay."""
    if "plain" not in smtp.esmtp_features.get("auth", "").lower().split():
        return smtp.login(login.username, login.password)
    smtp.user, smtp.password = login.username, login.password
    return smtp.auth("PLAIN", smtp.auth_plain)


def probe_login(
    address: str,
    fqdn: str,
    port: int,
    login: SenderLogin,
    *,
    recipient: str,
    timeout: float = 10.0,
) -> LoginObservation:
    smtp = open_smtp(address, fqdn, port, timeout=timeout)
    try:
        smtp.ehlo(EHLO_NAME)
        if smtp.has_extn("starttls"):
            smtp.starttls(context=insecure_context())
            smtp.ehlo(EHLO_NAME)
        try:
            auth = _reply(*_authenticate(smtp, login))
        except smtplib.SMTPAuthenticationError as exc:
            return LoginObservation(_reply(exc.smtp_code, exc.smtp_error), None, None)
        except smtplib.SMTPNotSupportedError:
            return LoginObservation((0, "AUTH not offered"), None, None)
        local = "relayops-check"
        own = _try_sender(smtp, f"{local}@{login.own_domain}", recipient)
        foreign = _try_sender(smtp, f"{local}@{login.foreign_domain}", recipient)
        return LoginObservation(auth, own, foreign)
    except (OSError, smtplib.SMTPException) as exc:
        raise ProbeError(f"SMTP dialogue with {address}:{port} failed: {exc}") from exc
    finally:
        close_smtp(smtp)


def judge_login(subject: str, group: str, login: SenderLogin, obs: LoginObservation) -> CheckResult:
    sub = f"{subject} sender of {login.username}"
    if obs.own is None or obs.foreign is None:
        code, text = obs.auth
        return error(
            RELAY,
            group,
            sub,
            f"login {login.username} was refused on {subject} ({code} {text}); check the "
            "test credentials and the SASL (Dovecot) service.",
        )
    if obs.foreign[0] // 100 == 2:
        return error(
            RELAY,
            group,
            sub,
            f"{subject} let {login.username} send from {login.foreign_domain}, a domain it "
            f"does not own ({obs.foreign[0]} {obs.foreign[1]}); add "
            "reject_sender_login_mismatch with smtpd_sender_login_maps.",
        )
    if obs.own[0] // 100 != 2:
        return warning(
            RELAY,
            group,
            sub,
            f"{subject} refused {login.username} even from its own domain "
            f"{login.own_domain} ({obs.own[0]} {obs.own[1]}), so the refusal of "
            f"{login.foreign_domain} proves nothing; fix smtpd_sender_login_maps.",
        )
    return ok(
        RELAY,
        group,
        sub,
        f"{login.username} may send from {login.own_domain} and is refused for "
        f"{login.foreign_domain} ({obs.foreign[0]} {obs.foreign[1]}).",
    )


# --- runners -----------------------------------------------------------------------------


def run_port_checks(target: CheckTarget, *, timeout: float = 5.0) -> list[CheckResult]:
    results: list[CheckResult] = []
    for host in target.hosts:
        p = host.ports
        for port in (p.smtp, p.submissions, p.submission, p.imaps):
            problem = tcp_reachable(host.connect_address, port, timeout=timeout)
            subject = f"{host.fqdn}:{port}"
            if problem is None:
                results.append(ok(PORTS, f"host {host.fqdn}", subject, f"{subject} is open."))
            else:
                results.append(
                    error(
                        PORTS,
                        f"host {host.fqdn}",
                        subject,
                        f"{subject} ({host.connect_address}) is not reachable ({problem}); "
                        "check the service and the firewall.",
                    )
                )
    return results


def _probe_error(check: str, group: str, subject: str, exc: ProbeError) -> CheckResult:
    return error(check, group, subject, f"{exc}; check that the service is up and reachable.")


def check_host_behaviour(
    host: HostTarget, target: CheckTarget, *, timeout: float = 10.0
) -> list[CheckResult]:
    group = f"host {host.fqdn}"
    address, p = host.connect_address, host.ports
    results: list[CheckResult] = []
    subject = f"{host.fqdn}:{p.submission}"
    try:
        obs = probe_submission(address, host.fqdn, p.submission, timeout=timeout)
        results += judge_submission(subject, group, obs, target.expected_size)
    except ProbeError as exc:
        results.append(_probe_error(RELAY, group, f"{subject} submission", exc))
    # Every port that accepts mail: 465 has its own master.cf overrides, so it can be
    # opened by mistake on its own.
    for port, starttls, implicit in (
        (p.smtp, False, False),
        (p.submission, True, False),
        (p.submissions, False, True),
    ):
        subject = f"{host.fqdn}:{port}"
        try:
            relay = probe_relay(
                address,
                host.fqdn,
                port,
                recipient=target.probe_recipient,
                starttls=starttls,
                implicit_tls=implicit,
                timeout=timeout,
            )
            results.append(
                judge_relay(
                    subject, group, target.probe_recipient, relay, submission=port != p.smtp
                )
            )
        except ProbeError as exc:
            results.append(_probe_error(RELAY, group, f"{subject} open relay", exc))
    for login in target.logins:
        subject = f"{host.fqdn}:{p.submission}"
        login_group = f"customer {login.customer}"
        try:
            seen = probe_login(
                address,
                host.fqdn,
                p.submission,
                login,
                recipient=target.probe_recipient,
                timeout=timeout,
            )
            results.append(judge_login(subject, login_group, login, seen))
        except ProbeError as exc:
            results.append(_probe_error(RELAY, login_group, f"{subject} login", exc))
    return results


def run_relay_checks(
    target: CheckTarget, *, timeout: float = 10.0, workers: int = 1
) -> list[CheckResult]:
    return gather(
        lambda h: check_host_behaviour(h, target, timeout=timeout), target.hosts, workers=workers
    )
