"""`/etc/relayops/policy.json`: the policy daemon's rules, resolved (docs/policy-json.md)."""

from __future__ import annotations

import json
from typing import Any

from relayops.compile.files import Daemon, ManagedFile, SecretFile
from relayops.compile.mailbox import MAILBOX_DOMAIN
from relayops.compile.placement import served
from relayops.compile.redis_secrets import password_source
from relayops.compile.templates import Templates
from relayops.hostlayout import (
    MESSAGE_MILTER_LISTEN,
    NOTIFY_SMTP,
    RULES_PATH,
    SQLITE_STORE,
    STORE_PASSWORD_FILE,
    TRACE_KEY,
)
from relayops.hostlayout import POLICY_LISTEN as LISTEN
from relayops.model import Customer, Inventory, RelayHost, Repo
from relayops.model.secrets import TRACE_KEY_SOURCE
from relayops.policyd.contract import (
    SCHEMA_MAJOR,
    AntiSpam,
    CustomerRules,
    Notifications,
    PolicyFile,
    ServiceInfo,
    Stage,
    Template,
)
from relayops.warmup.schedule import dated_stages

DEFAULTS_PATH = "/etc/default/relayops-policyd"


def warmup_stages(repo: Repo, customer: Customer) -> list[Stage]:
    """Stages as inclusive local dates (warmup/schedule.py: calendar or held stage)."""
    ref = customer.warmup
    if ref is None or customer.placement.dedicated_ip is None:
        return []
    return [
        Stage(
            first_day=dated.first_day,
            last_day=dated.last_day,
            daily_cap=dated.stage.daily_cap,
            isp_caps=dict(dated.stage.isp_caps),
        )
        for dated in dated_stages(repo.warmup[ref.schedule], ref)
    ]


def recipient_classes(repo: Repo) -> dict[str, str]:
    """Recipient domain -> ISP class (exact domains of policies/throttling.yaml)."""
    return {domain.lower(): name for name, cls in repo.throttling.items() for domain in cls.domains}


def customer_rules(repo: Repo, customer: Customer) -> CustomerRules:
    plan = repo.plans[customer.plan]
    return CustomerRules(
        name=customer.name,
        status=customer.status.value,
        status_reason=customer.status_reason,
        timezone=customer.timezone,
        daily_quota=repo.effective_quota(customer),
        warn_ratio=plan.warn_ratio,
        max_message_bytes=plan.max_message_bytes,
        contact=customer.contact,
        logins=sorted(u.login for u in customer.users),
        domains=sorted(d.name for d in customer.domains),
        warmup=warmup_stages(repo, customer),
        # Read by the milter on submission (docs/milter.md).
        plan=customer.plan,
        from_subdomains=plan.from_subdomains,
        campaigns=plan.campaigns,
        campaign_recipients=plan.campaign_recipients,
    )


def policy_rules(repo: Repo, host: RelayHost) -> PolicyFile:
    """The daemon's rules for one host: the customers it serves, resolved."""
    service = repo.service
    notes = repo.notifications
    customers = {c.id: customer_rules(repo, c) for c, _ in served(repo.customers, host)}
    capped = any(stage.isp_caps for rules in customers.values() for stage in rules.warmup)
    return PolicyFile(
        schema_version=SCHEMA_MAJOR,
        service=ServiceInfo(
            name=service.name,
            domain=service.domain,
            notify_from=service.notify_from,
            mailbox_domain=MAILBOX_DOMAIN,
        ),
        customers=customers,
        notifications=Notifications(
            **{
                kind: Template(subject=note.subject, body=note.body)
                for kind, note in sorted(notes.items())
            }
        ),
        antispam=antispam_rules(repo),
        # Only hosts with a per-class cap to apply carry the domain table.
        recipient_classes=recipient_classes(repo) if capped else {},
    )


def _without_empty_caps(data: dict[str, Any]) -> dict[str, Any]:
    """Leave out the warm-up's per-class fields where empty: a host without per-class caps
    keeps the file it had before they existed (fewer changed bytes in plans)."""
    if not data.get("recipient_classes"):
        data.pop("recipient_classes", None)
    for rules in data["customers"].values():
        for stage in rules["warmup"]:
            if not stage.get("isp_caps"):
                stage.pop("isp_caps", None)
    return data


def redis_user(inventory: Inventory) -> str | None:
    """The ACL user of the shared counters' URL when its password must come from secrets/."""
    if not inventory.shared_counters:
        return None
    from relayops.policyd.redis_url import RedisUrl  # the one definition of the URL forms

    try:
        url = RedisUrl.parse(inventory.shared_counters)
    except ValueError as exc:
        raise ValueError(f"relayops_shared_counters: {exc}") from None
    if url.password is not None:
        raise ValueError(
            f"relayops_shared_counters {url.redacted()}: a password does not belong in the "
            f"inventory; it comes from {password_source(url.username or 'USER')}"
        )
    return url.username


def antispam_rules(repo: Repo) -> AntiSpam:
    """policies/antispam.yaml, flattened for the relay's feedback ingester."""
    a = repo.antispam
    return AntiSpam(
        complaints=a.complaint_rate.complaints,
        per_messages=a.complaint_rate.per_messages,
        min_volume=a.min_volume,
        bounce_rate_max=a.bounce_rate_max,
        on_complaint=a.on_complaint,
        on_breach=a.on_breach,
        window_days=a.window_days,
        suppress_days=a.suppress_days,
    )


def store_arguments(inventory: Inventory) -> list[str]:
    """`--store` (and the password file) of the daemon and of the feedback ingester, which
    writes to the same store: a fleet shares Redis counters, one host keeps SQLite."""
    arguments = ["--store", inventory.shared_counters or SQLITE_STORE]
    if redis_user(inventory):
        arguments += ["--store-password-file", STORE_PASSWORD_FILE]
    return arguments


def daemon_arguments(inventory: Inventory) -> list[str]:
    """`relayops policyd` arguments."""
    return [
        "--rules", RULES_PATH,
        "--listen", LISTEN,
        "--milter", MESSAGE_MILTER_LISTEN,
        *store_arguments(inventory),
        "--notify-smtp", NOTIFY_SMTP,
        "--trace-key-file", TRACE_KEY,
    ]  # fmt: skip


def policy_secrets(inventory: Inventory) -> list[SecretFile]:
    """The daemon's Redis password, readable by the daemon's account only."""
    user = redis_user(inventory)
    if user is None:
        return []
    return [
        SecretFile(
            STORE_PASSWORD_FILE,
            password_source(user),
            0o600,
            "relayops",
            "relayops",
            Daemon.POLICYD,
        )
    ]


def policy_files(
    repo: Repo, inventory: Inventory, host: RelayHost, templates: Templates
) -> list[ManagedFile]:
    data = _without_empty_caps(policy_rules(repo, host).model_dump(mode="json"))
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    defaults = templates.render(DEFAULTS_PATH, arguments=" ".join(daemon_arguments(inventory)))
    return [
        # Contact addresses and suspension reasons: readable by the daemon's group only.
        ManagedFile(
            RULES_PATH, (text + "\n").encode("utf-8"), 0o640, "root", "relayops", Daemon.POLICYD
        ),
        ManagedFile(DEFAULTS_PATH, defaults, 0o644, "root", "root", Daemon.POLICYD),
    ]


def trace_key_secret() -> SecretFile:
    """The stamp key: read by the daemon and by the pipe's ingester, both user relayops."""
    return SecretFile(TRACE_KEY, TRACE_KEY_SOURCE, 0o600, "relayops", "relayops", Daemon.POLICYD)
