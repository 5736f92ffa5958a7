"""`/etc/relayops/policy.json`: the policy daemon's rules, resolved (docs/policy-json.md)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from relayops.compile.files import ManagedFile, Service
from relayops.compile.placement import served
from relayops.compile.templates import Templates
from relayops.model import Customer, Inventory, RelayHost, Repo

RULES_PATH = "/etc/relayops/policy.json"
DEFAULTS_PATH = "/etc/default/relayops-policyd"
SCHEMA_VERSION = 1
LISTEN = "127.0.0.1:10040"  # Postfix: check_policy_service inet:127.0.0.1:10040
# The daemon's message-checking milter (docs/milter.md); postfix.py derives
# smtpd_milters from it, so the address is written here only.
MILTER_LISTEN = "127.0.0.1:10041"
SQLITE_STORE = "sqlite:/var/lib/relayops/policyd.sqlite"
NOTIFY_SMTP = "127.0.0.1:25"  # loopback is in mynetworks: notices may relay from there


def warmup_stages(repo: Repo, customer: Customer) -> list[dict[str, Any]]:
    """Stages as inclusive local dates; day 1 of the schedule is the warm-up's start date."""
    ref = customer.warmup
    if ref is None or customer.placement.dedicated_ip is None:
        return []
    start = ref.start
    return [
        {
            "first_day": (start + timedelta(days=stage.first_day - 1)).isoformat(),
            "last_day": (start + timedelta(days=stage.last_day - 1)).isoformat(),
            "daily_cap": stage.daily_cap,
        }
        for stage in repo.warmup[ref.schedule].stages
    ]


def customer_rules(repo: Repo, customer: Customer) -> dict[str, Any]:
    plan = repo.plans[customer.plan]
    return {
        "name": customer.name,
        "status": customer.status.value,
        "status_reason": customer.status_reason,
        "timezone": customer.timezone,
        "daily_quota": repo.effective_quota(customer),
        "warn_ratio": plan.warn_ratio,
        "max_message_bytes": plan.max_message_bytes,
        "contact": customer.contact,
        "logins": sorted(u.login for u in customer.users),
        "domains": sorted(d.name for d in customer.domains),
        "warmup": warmup_stages(repo, customer),
        # Read by the milter on submission (docs/milter.md).
        "plan": customer.plan,
        "from_subdomains": plan.from_subdomains,
        "campaigns": plan.campaigns,
        "campaign_recipients": plan.campaign_recipients,
    }


def policy_rules(repo: Repo, host: RelayHost) -> dict[str, Any]:
    service = repo.service
    return {
        "schema_version": SCHEMA_VERSION,
        "service": {
            "name": service.name,
            "domain": service.domain,
            "notify_from": service.notify_from,
        },
        "customers": {c.id: customer_rules(repo, c) for c, _ in served(repo.customers, host)},
        "notifications": {
            kind: {"subject": note.subject, "body": note.body}
            for kind, note in sorted(repo.notifications.items())
        },
    }


def daemon_arguments(inventory: Inventory) -> list[str]:
    """`relayops policyd` arguments: a fleet shares Redis counters, one host keeps SQLite."""
    return [
        "--rules", RULES_PATH,
        "--listen", LISTEN,
        "--milter", MILTER_LISTEN,
        "--store", inventory.shared_counters or SQLITE_STORE,
        "--notify-smtp", NOTIFY_SMTP,
    ]  # fmt: skip


def policy_files(
    repo: Repo, inventory: Inventory, host: RelayHost, templates: Templates
) -> list[ManagedFile]:
    text = json.dumps(policy_rules(repo, host), indent=2, sort_keys=True, ensure_ascii=False)
    defaults = templates.render(DEFAULTS_PATH, arguments=" ".join(daemon_arguments(inventory)))
    return [
        # Contact addresses and suspension reasons: readable by the daemon's group only.
        ManagedFile(
            RULES_PATH, (text + "\n").encode("utf-8"), 0o640, "root", "relayops", Service.POLICYD
        ),
        ManagedFile(DEFAULTS_PATH, defaults, 0o644, "root", "root", Service.POLICYD),
    ]
