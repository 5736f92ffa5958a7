"""The invalid-input corpus: each case breaks one thing and names the exact finding.

Every case starts from a copy of the example repository, writes or changes files,
and asserts file, line, column, field path and message of the finding(s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from relayops.loader import load_repo

TODAY = date(2026, 11, 23)
HASH = (
    "{SHA512-CRYPT}$6$7ebd5fef52a51aab$peCJKyO8uijADYMLBH0vIMiW8KRDv0OZQwPgkc96eHACNyY."
    "Fc7VeqM3H26CuQw3gFsnf.GCm.eLB4boYrRsB/"
)
NEWCO = f"""name: NewCo
contact: ops@newco.example
plan: starter
placement:
  pool: shared-eu
domains:
  - name: newco.example
    dkim: {{selector: n1}}
users:
  - login: newco
    password: "{HASH}"
"""
NEW = "customers/newco.yaml"


LEDGER = "policies/released-ips.yaml"
LEDGER_HEAD = "# yaml-language-server: $schema=../schemas/released-ips.schema.json\nreleased:\n"


def ledger_entry(ip: str, released: str, customer: str, reason: str) -> str:
    return (
        f"  - ip: {ip}\n    released: {released}\n    customer: {customer}\n    reason: {reason}\n"
    )


def newco(old: str = "", new: str = "", *, append: str = "") -> str:
    if old:
        assert old in NEWCO, old
    return NEWCO.replace(old, new, 1) + append


# The production inventory's counters URL, as written there (two string literals).
PRODUCTION_COUNTERS = (
    '"rediss+sentinel://relayops-policyd@192.0.2.51:26379,192.0.2.52:26379,"\n'
    '            "192.0.2.53:26379/relayops/0?ca=/etc/relayops/tls/ca.pem"'
)


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]
    # (file, line, column, field, message fragment)
    expected: list[tuple[str, int, int, str, str]]
    edits: dict[str, tuple[str, str]] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    # newco's DKIM key pair (a copy of acme's) under secrets/, unless the case is about it
    newco_keys: bool = True


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join('*' + chr(97 + i) for _ in range(10))}]\n"
    for i in range(6)
)

CASES = [
    Case(
        "yaml-syntax",
        {NEW: "name: [unclosed\ncontact: x\n"},
        [(NEW, 2, 8, "", "YAML syntax error")],
    ),
    Case("empty-file", {NEW: ""}, [(NEW, 1, 1, "", "is empty; expected a mapping")]),
    Case("binary-file", {NEW: b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"}, [(NEW, 1, 1, "", "binary")]),
    Case(
        "list-at-top", {NEW: "- name: NewCo\n"}, [(NEW, 1, 1, "", "is a list; expected a mapping")]
    ),
    Case(
        "duplicate-key",
        {NEW: newco(append="plan: business\n")},
        [(NEW, 12, 1, "", "duplicate key 'plan'")],
    ),
    Case("alias-bomb", {NEW: BOMB}, [(NEW, 0, 0, "", "alias/anchor bomb")]),
    Case(
        "unknown-field",
        {NEW: newco(append="colour: red\n")},
        [(NEW, 12, 1, "colour", "unknown field; accepted: name, contact, status")],
    ),
    Case(
        "unknown-nested-field",
        {NEW: newco("dkim: {selector: n1}", "dkim: {selector: n1, algo: ed25519}")},
        [(NEW, 8, 26, "domains[0].dkim.algo", "unknown field; accepted: selector")],
    ),
    Case(
        "missing-field",
        {NEW: newco("contact: ops@newco.example\n", "")},
        [(NEW, 1, 1, "contact", "required field is missing")],
    ),
    Case(
        "wrong-type",
        {NEW: newco(append="quota_override: lots\n")},
        [(NEW, 12, 1, "quota_override", "valid integer")],
    ),
    Case(
        "list-for-map",
        {NEW: newco("placement:\n  pool: shared-eu\n", "placement: [shared-eu]\n")},
        [(NEW, 4, 1, "placement", "valid dictionary")],
    ),
    Case(
        "bad-file-name",
        {"customers/New_Co.yaml": NEWCO.replace("newco", "newco2")},
        [("customers/New_Co.yaml", 1, 1, "id", "DNS-safe slug")],
    ),
    Case(
        "id-in-file",
        {NEW: newco(append="id: other\n")},
        [(NEW, 12, 1, "id", "the customer id is the file name")],
    ),
    Case(
        "bad-timezone",
        {NEW: newco(append="timezone: Mars/Olympus\n")},
        [(NEW, 12, 1, "timezone", "IANA time zone")],
    ),
    Case(
        "plaintext-password",
        {NEW: newco(f'"{HASH}"', "hunter2")},
        [(NEW, 11, 5, "users[0].password", "a plaintext password is never accepted")],
    ),
    Case(
        "weak-scheme",
        {NEW: newco(f'"{HASH}"', '"{PLAIN-MD5}1a1dc91c907325c69271ddf0c944bc72"')},
        [(NEW, 11, 5, "users[0].password", "weak or unknown scheme {PLAIN-MD5}")],
    ),
    Case(
        "malformed-hash",
        {NEW: newco(f'"{HASH}"', '"{SHA512-CRYPT}$6$abc$def"')},
        [(NEW, 11, 5, "users[0].password", "not a well-formed {SHA512-CRYPT} hash")],
    ),
    Case(
        "bad-status",
        {NEW: newco(append="status: paused\n")},
        [(NEW, 12, 1, "status", "'active', 'suspended' or 'terminated'")],
    ),
    Case(
        "suspended-without-reason",
        {NEW: newco(append="status: suspended\n")},
        [(NEW, 1, 1, "", "a suspended customer needs 'status_reason' and 'status_date'")],
    ),
    Case(
        "dedicated-without-warmup",
        {
            NEW: newco(
                "plan: starter\nplacement:\n  pool: shared-eu",
                "plan: pro\nplacement:\n  dedicated_ip: dedicated-3",
            )
        },
        [(NEW, 1, 1, "", "needs 'warmup'")],
    ),
    Case(
        "pool-and-dedicated",
        {NEW: newco("  pool: shared-eu\n", "  pool: shared-eu\n  dedicated_ip: dedicated-3\n")},
        [(NEW, 4, 1, "placement", "give exactly one of 'pool' or 'dedicated_ip'")],
    ),
    Case(
        "bad-domain",
        {NEW: newco("name: newco.example", "name: not a domain")},
        [(NEW, 7, 5, "domains[0].name", "must be a fully qualified domain name")],
    ),
    Case(
        "bad-contact",
        {NEW: newco("contact: ops@newco.example", "contact: ops-at-newco")},
        [(NEW, 2, 1, "contact", "must be an e-mail address")],
    ),
    Case(
        "domain-taken-case-insensitive",
        {NEW: newco("name: newco.example", "name: ACME.Example.")},
        [
            (NEW, 7, 5, "domains[0].name", "domain also belongs to customer 'acme'"),
            ("customers/acme.yaml", 10, 5, "domains[0].name", "also belongs to customer 'newco'"),
        ],
    ),
    Case(
        "domain-taken-idna",
        {
            NEW: newco(
                "name: newco.example", "name: " + "bücher-soylent.example".encode("idna").decode()
            )
        },
        [
            (NEW, 7, 5, "domains[0].name", "domain also belongs to customer 'soylent'"),
            (
                "customers/soylent.yaml",
                12,
                5,
                "domains[1].name",
                "also belongs to customer 'newco'",
            ),
        ],
    ),
    Case(
        "login-taken",
        {NEW: newco("login: newco", "login: acme-app")},
        [
            (NEW, 10, 5, "users[0].login", "login also used by customer 'acme'"),
            ("customers/acme.yaml", 15, 5, "users[0].login", "login also used by customer 'newco'"),
        ],
    ),
    Case(
        "unknown-plan",
        {NEW: newco("plan: starter", "plan: gold")},
        [(NEW, 3, 1, "plan", "unknown plan; plans in policies/plans.yaml: business, pro, starter")],
    ),
    Case(
        "unknown-pool",
        {NEW: newco("pool: shared-eu", "pool: shared-asia")},
        [
            (NEW, 5, 3, "placement.pool", "no pool of that name in lab.py"),
            (NEW, 5, 3, "placement.pool", "no pool of that name in production.py"),
        ],
    ),
    Case(
        "unknown-dedicated-ip",
        {
            NEW: newco(
                "plan: starter\nplacement:\n  pool: shared-eu",
                "plan: pro\nplacement:\n  dedicated_ip: dedicated-9",
                append="warmup: {schedule: standard-5w, start: 2026-11-01}\n",
            )
        },
        [
            (NEW, 5, 3, "placement.dedicated_ip", "no IP of that name in lab.py"),
            (NEW, 5, 3, "placement.dedicated_ip", "no IP of that name in production.py"),
        ],
    ),
    Case(
        "dedicated-ip-taken",
        {
            NEW: newco(
                "plan: starter\nplacement:\n  pool: shared-eu",
                "plan: pro\nplacement:\n  dedicated_ip: dedicated-1",
                append="warmup: {schedule: standard-5w, start: 2026-11-01}\n",
            )
        },
        [
            (NEW, 5, 3, "placement.dedicated_ip", "dedicated IP also serves customer 'globex'"),
            (
                "customers/globex.yaml",
                8,
                3,
                "placement.dedicated_ip",
                "also serves customer 'newco'",
            ),
        ],
    ),
    Case(
        "released-ip-too-soon",
        {
            NEW: newco(
                "plan: starter\nplacement:\n  pool: shared-eu",
                "plan: pro\nplacement:\n  dedicated_ip: dedicated-2",
                append="warmup: {schedule: standard-5w, start: 2026-11-01}\n",
            )
        },
        [
            (
                NEW,
                5,
                3,
                "placement.dedicated_ip",
                "released by customer 'vandelay' on 2026-03-02 (policies/released-ips.yaml:6); "
                "it cannot be reused before 2027-03-02",
            ),
        ],
    ),
    Case(
        "pool-ip-as-dedicated",
        {
            NEW: newco(
                "plan: starter\nplacement:\n  pool: shared-eu",
                "plan: pro\nplacement:\n  dedicated_ip: eu-1",
                append="warmup: {schedule: standard-5w, start: 2026-11-01}\n",
            )
        },
        [(NEW, 5, 3, "placement.dedicated_ip", "is in pool 'shared-eu'")] * 2,
    ),
    Case(
        "override-above-ceiling",
        {NEW: newco(append="quota_override: 5000\n")},
        [(NEW, 12, 1, "quota_override", "exceeds plan 'starter' ceiling of 2000 per day")],
    ),
    Case(
        "plan-without-dedicated",
        {
            NEW: newco(
                "  pool: shared-eu",
                "  dedicated_ip: dedicated-3",
                append="warmup: {schedule: standard-5w, start: 2026-11-01}\n",
            )
        },
        [
            (NEW, 5, 3, "placement.dedicated_ip", "plan 'starter' does not include a dedicated IP"),
            (NEW, 5, 3, "placement.dedicated_ip", "also serves customer 'wayne'"),
            (
                "customers/wayne.yaml",
                9,
                3,
                "placement.dedicated_ip",
                "also serves customer 'newco'",
            ),
        ],
    ),
    Case(
        "unknown-warmup-schedule",
        {NEW: newco(append="warmup: {schedule: fast, start: 2027-04-01}\n")},
        [
            (
                NEW,
                12,
                10,
                "warmup.schedule",
                "unknown warm-up schedule; defined: gentle-6w, standard-5w",
            )
        ],
    ),
    Case(
        "private-key-in-customers",
        {"customers/notes.txt": "keep\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n"},
        [
            ("customers/notes.txt", 1, 1, "", "is not a .yaml file"),
            ("customers/notes.txt", 2, 1, "", "contains a PEM private key"),
        ],
    ),
    Case(
        "password-in-inventory",
        {},
        [("inventory/lab.py", 16, 17, "", "contains a password")],
        edits={
            "inventory/lab.py": (
                '"ssh_user": "root",\n',
                '"ssh_user": "root",\n                "ssh_password": "x",\n',
            )
        },
    ),
    Case(
        "inventory-syntax-error",
        {"inventory/lab.py": "relays = [(\n"},
        [("inventory/lab.py", 1, 1, "", "cannot be executed: SyntaxError")],
    ),
    Case(
        "inventory-ip-role",
        {},
        [
            (
                "inventory/production.py",
                15,
                30,
                "relays[0].relayops_ips[0]",
                "either in a 'pool' or 'dedicated: true'",
            )
        ],
        edits={
            "inventory/production.py": (
                '"pool": "shared-eu",\n                     "ptr": "relay1',
                '"pool": "shared-eu", "dedicated": True,\n                     "ptr": "relay1',
            )
        },
    ),
    Case(
        "inventory-duplicate-address",
        {},
        [("inventory/lab.py", 36, 49, "relays[1].relayops_ips[1].address", "address used twice")],
        edits={"inventory/lab.py": ('"198.18.0.121"', '"198.18.0.111"')},
    ),
    Case(
        "feedback-address-outside-service-domain",
        {},
        [
            (
                "policies/service.yaml",
                9,
                1,
                "feedback_address",
                "must be an address of the service domain 'relay.example.net'",
            )
        ],
        edits={
            "policies/service.yaml": (
                "feedback_address: fbl@relay.example.net",
                "feedback_address: fbl@elsewhere.example",
            )
        },
    ),
    Case(
        "plan-warn-ratio",
        {},
        [("policies/plans.yaml", 9, 5, "plans.starter.warn_ratio", "less than or equal to 1")],
        edits={"policies/plans.yaml": ("warn_ratio: 0.8", "warn_ratio: 1.5")},
    ),
    Case(
        "plan-campaigns-value",
        {},
        [("policies/plans.yaml", 13, 5, "plans.starter.campaigns", "'allowed' or 'forbidden'")],
        edits={"policies/plans.yaml": ("campaigns: forbidden", "campaigns: sometimes")},
    ),
    Case(
        "plan-campaign-recipients-zero",
        {},
        [
            (
                "policies/plans.yaml",
                14,
                5,
                "plans.starter.campaign_recipients",
                "greater than or equal to 1",
            )
        ],
        edits={"policies/plans.yaml": ("campaign_recipients: 20", "campaign_recipients: 0")},
    ),
    Case(
        "plan-campaign-recipients-over-postfix-limit",
        {},
        [
            (
                "policies/plans.yaml",
                14,
                5,
                "plans.starter.campaign_recipients",
                "less than or equal to 1000",
            )
        ],
        edits={"policies/plans.yaml": ("campaign_recipients: 20", "campaign_recipients: 1001")},
    ),
    Case(
        "warmup-too-short",
        {
            "policies/warmup.yaml": (
                "schedules:\n  quick:\n    stages:\n"
                "      - {first_day: 1, last_day: 14, daily_cap: 100}\n"
            )
        },
        [
            (
                "policies/warmup.yaml",
                2,
                3,
                "schedules.quick",
                "a warm-up lasts 4 to 6 weeks; this one lasts 14 days",
            ),
        ],
    ),
    Case(
        "warmup-gap",
        {},
        [
            (
                "policies/warmup.yaml",
                13,
                3,
                "schedules.gentle-6w",
                "stages must be contiguous from day 1",
            )
        ],
        edits={
            "policies/warmup.yaml": (
                "{first_day: 8, last_day: 14, daily_cap: 400}",
                "{first_day: 9, last_day: 14, daily_cap: 400}",
            )
        },
    ),
    # Throttling classes: combinations Postfix accepts and silently does not apply.
    Case(
        "throttling-rate-delay-with-concurrency",
        {},
        [
            (
                "policies/throttling.yaml",
                9,
                5,
                "classes.gmail.concurrency",
                "one message at a time per destination",
            )
        ],
        edits={
            "policies/throttling.yaml": (
                "concurrency: 1\n    rate_delay_seconds: 1",
                "concurrency: 5\n    rate_delay_seconds: 1",
            )
        },
    ),
    Case(
        "throttling-one-recipient-per-message",
        {},
        [
            (
                "policies/throttling.yaml",
                15,
                5,
                "classes.microsoft.recipients_per_message",
                "per recipient instead of per domain",
            )
        ],
        edits={
            "policies/throttling.yaml": (
                "messages_per_connection: 10",
                "messages_per_connection: 10\n    recipients_per_message: 1",
            )
        },
    ),
    Case(
        "throttling-reuse-across-a-long-delay",
        {},
        [
            (
                "policies/throttling.yaml",
                20,
                5,
                "classes.yahoo.messages_per_connection",
                "the connection is closed during a pause of 10 s or more",
            )
        ],
        edits={
            "policies/throttling.yaml": (
                "rate_delay_seconds: 2",
                "rate_delay_seconds: 12\n    messages_per_connection: 5",
            )
        },
    ),
    Case(
        "throttling-few-failed-cohorts-with-delay",
        {},
        [("policies/throttling.yaml", 11, 5, "classes.gmail.back_off", "use 10 or more")],
        edits={
            "policies/throttling.yaml": (
                "rate_delay_seconds: 1",
                "rate_delay_seconds: 1\n    back_off: {failed_cohorts: 3}",
            )
        },
    ),
    Case(
        "throttling-negative-feedback-at-concurrency-1",
        {},
        [("policies/throttling.yaml", 22, 5, "classes.yahoo.back_off", "nothing to lower")],
        edits={
            "policies/throttling.yaml": (
                "back_off: {pause_seconds: 30}",
                "back_off: {pause_seconds: 30, negative_feedback: '1'}",
            )
        },
    ),
    Case(
        "throttling-pause-too-short",
        {},
        [
            (
                "policies/throttling.yaml",
                22,
                16,
                "classes.yahoo.back_off.pause_seconds",
                "greater than or equal to 10",
            )
        ],
        edits={
            "policies/throttling.yaml": (
                "back_off: {pause_seconds: 30}",
                "back_off: {pause_seconds: 9}",
            )
        },
    ),
    Case(
        "throttling-pause-longer-than-a-day",
        {},
        [
            (
                "policies/throttling.yaml",
                22,
                16,
                "classes.yahoo.back_off.pause_seconds",
                "less than or equal to 86400",
            )
        ],
        edits={
            "policies/throttling.yaml": (
                "back_off: {pause_seconds: 30}",
                "back_off: {pause_seconds: 86401}",
            )
        },
    ),
    Case(
        "throttling-domain-in-two-classes",
        {},
        [
            ("policies/throttling.yaml", 8, 15, "classes.gmail.domains[0]", "also in class yahoo"),
            ("policies/throttling.yaml", 17, 46, "classes.yahoo.domains[3]", "also in class gmail"),
        ],
        edits={
            "policies/throttling.yaml": (
                "[yahoo.com, ymail.com, aol.com]",
                "[yahoo.com, ymail.com, aol.com, gmail.com]",
            )
        },
    ),
    Case(
        "warmup-unknown-isp",
        {},
        [
            (
                "policies/warmup.yaml",
                7,
                90,
                "schedules.standard-5w.stages[0].isp_caps.aol",
                "unknown throttling class",
            )
        ],
        edits={"policies/warmup.yaml": ("yahoo: 30}", "aol: 30}")},
    ),
    Case(
        "released-ip-old-file-deleted",
        {
            NEW: newco(
                "plan: starter\nplacement:\n  pool: shared-eu",
                "plan: pro\nplacement:\n  dedicated_ip: dedicated-2",
                append="warmup: {schedule: standard-5w, start: 2026-11-01}\n",
            )
        },
        [
            (
                NEW,
                5,
                3,
                "placement.dedicated_ip",
                "IP was released by customer 'vandelay' on 2026-03-02 "
                "(policies/released-ips.yaml:6); it cannot be reused before 2027-03-02",
            ),
        ],
        removed=("customers/vandelay.yaml",),
    ),
    Case(
        "released-ip-held-after-swap",
        {LEDGER: LEDGER_HEAD + ledger_entry("dedicated-1", "2026-06-01", "oldco", "paid IP swap")},
        [
            (
                "customers/globex.yaml",
                8,
                3,
                "placement.dedicated_ip",
                "IP was released by customer 'oldco' on 2026-06-01 "
                "(policies/released-ips.yaml:3); it cannot be reused before 2027-06-01",
            ),
        ],
    ),
    Case(
        "ledger-future-date",
        {LEDGER: LEDGER_HEAD + ledger_entry("dedicated-2", "2026-12-01", "vandelay", "terminated")},
        [
            (
                LEDGER,
                4,
                5,
                "released[0].released",
                "release date is in the future (today is 2026-11-23)",
            )
        ],
    ),
    Case(
        "ledger-unknown-field",
        {
            LEDGER: LEDGER_HEAD
            + ledger_entry("dedicated-2", "2026-03-02", "vandelay", "gone")
            + "    note: spam\n"
        },
        [
            (
                LEDGER,
                7,
                5,
                "released[0].note",
                "unknown field; accepted: ip, released, customer, reason",
            )
        ],
    ),
    Case(
        "ledger-bad-ip-name",
        {LEDGER: LEDGER_HEAD + ledger_entry("Dedicated 2", "2026-03-02", "vandelay", "gone")},
        [(LEDGER, 3, 5, "released[0].ip", "must be a DNS-safe slug")],
    ),
    Case(
        "ledger-short-reason",
        {LEDGER: LEDGER_HEAD + ledger_entry("dedicated-2", "2026-03-02", "vandelay", "x")},
        [(LEDGER, 6, 5, "released[0].reason", "at least 3 characters")],
    ),
    Case(
        "ledger-bad-date",
        {LEDGER: LEDGER_HEAD + ledger_entry("dedicated-2", "last spring", "vandelay", "gone")},
        [(LEDGER, 4, 5, "released[0].released", "valid date")],
    ),
    Case(
        "ledger-not-a-list",
        {LEDGER: "released: {ip: dedicated-2}\n"},
        [(LEDGER, 1, 1, "released", "valid list")],
    ),
    Case(
        "notification-placeholder",
        {"policies/notifications/limit.txt": "Subject: limit for $who\n\nbody\n"},
        [("policies/notifications/limit.txt", 1, 1, "", "unknown placeholder in subject")],
    ),
    Case(
        # $count belongs to the quota notices, not to a complaint-review one.
        "notification-placeholder-of-another-kind",
        {"policies/notifications/disabled.txt": "Subject: disabled\n\n$count sent\n"},
        [
            (
                "policies/notifications/disabled.txt",
                1,
                1,
                "",
                "unknown placeholder in body; known: $customer, $day, $name, $reason, $timezone",
            )
        ],
    ),
    Case(
        "notification-missing-kind",
        {},
        [("policies/notifications/resumed.txt", 1, 1, "", "cannot be read as UTF-8 text")],
        removed=("policies/notifications/resumed.txt",),
    ),
    Case(
        "notification-no-subject",
        {"policies/notifications/warning.txt": "Hello\n"},
        [("policies/notifications/warning.txt", 1, 1, "", "must start with one 'Subject: …' line")],
    ),
    Case(
        "inventory-unknown-group-key",
        {},
        [
            (
                "inventory/lab.py",
                47,
                9,
                "relayops_shared_counter",
                "unknown inventory key; keys the relays group's data may set: "
                "relayops_shared_counters, relayops_dnsbl_zones, relayops_tls, "
                "relayops_age_identity, relayops_ca_bundle, relayops_check_nameserver "
                "(declared in src/relayops/model/inventory.py)",
            )
        ],
        edits={"inventory/lab.py": ('"relayops_shared_counters"', '"relayops_shared_counter"')},
    ),
    Case(
        "inventory-unknown-host-key",
        {},
        [
            (
                "inventory/production.py",
                27,
                49,
                "relays[1].relayops_pool",
                "unknown inventory key; keys a host's data may set: relayops_ips, relayops_tls",
            )
        ],
        edits={
            "inventory/production.py": (
                '"ssh_hostname": "203.0.113.12",',
                '"ssh_hostname": "203.0.113.12", "relayops_pool": "shared-eu",',
            )
        },
    ),
    Case(
        "inventory-bad-tls-source",
        {},
        [("inventory/lab.py", 58, 25, "relayops_tls", "input should be 'acme' or 'lab-ca'")],
        edits={"inventory/lab.py": ('"relayops_tls": "lab-ca"', '"relayops_tls": "letsencrypt"')},
    ),
    Case(
        "pool-on-two-relays-without-shared-counters",
        {},
        [
            (
                "inventory/production.py",
                31,
                74,
                "relays[1].relayops_ips[1].pool",
                "pool 'shared-eu' sends from 2 relays (relay1.relay.example.net, "
                "relay2.relay.example.net) that count quotas each on its own: its customers "
                "(acme, stark, umbrella) could send 2x their daily quota; set "
                'relayops_shared_counters (e.g. "redis://HOST:6379/0") in the relays group data',
            )
        ],
        edits={
            "inventory/production.py": (
                '"relayops_shared_counters":\n            '
                '"rediss+sentinel://relayops-policyd@192.0.2.51:26379,192.0.2.52:26379,"\n'
                '            "192.0.2.53:26379/relayops/0?ca=/etc/relayops/tls/ca.pem",\n',
                "",
            )
        },
    ),
    Case(
        "shared-counters-url-refused",
        {},
        [
            (
                "inventory/production.py",
                49,
                13,
                "relayops_shared_counters",
                "'rediss://oops': 'oops' is not an IP address or a fully qualified name every "
                "relay can resolve",
            )
        ],
        edits={"inventory/production.py": (PRODUCTION_COUNTERS, '"rediss://oops"')},
    ),
    Case(
        "shared-counters-not-a-redis-url",
        {},
        [
            (
                "inventory/production.py",
                49,
                13,
                "relayops_shared_counters",
                "shared counters need redis[s]://[USER@]HOST[:PORT][/N] or redis[s]+sentinel://",
            )
        ],
        edits={
            "inventory/production.py": (
                PRODUCTION_COUNTERS,
                '"sqlite:/var/lib/relayops/policyd.sqlite"',
            )
        },
    ),
    Case(
        "dkim-key-missing",
        {NEW: NEWCO},
        [
            (
                NEW,
                8,
                12,
                "domains[0].dkim.selector",
                "no DKIM key secrets/dkim/newco.example.n1.key.age and "
                "secrets/dkim/newco.example.n1.pub.pem; run `relayops dkim generate "
                "newco.example --selector n1`",
            )
        ],
        newco_keys=False,
    ),
    Case(
        "shared-counters-database-a-relay-hosted-redis-lacks",
        {},
        [
            (
                "inventory/lab.py",
                48,
                13,
                "relayops_shared_counters",
                "database 16 on relay relay1.relay.example.net: the Redis the deploy runs there "
                "has databases 0 to 15 (Debian's default)",
            )
        ],
        edits={"inventory/lab.py": ("198.18.0.11:6380/0?ca=", "198.18.0.11:6380/16?ca=")},
    ),
    Case(
        "age-identity-missing",
        {},
        [
            (
                "inventory/lab.py",
                56,
                34,
                "relayops_age_identity",
                "; name the age identity that decrypts secrets/ (or leave it unset and set "
                "RELAYOPS_AGE_IDENTITY when deploying)",
            )
        ],
        edits={"inventory/lab.py": ('"lab/age-identity.lab-only.txt"', '"lab/age-identity.txt"')},
    ),
    Case(
        "inventory-host-listed-twice",
        {},
        [("inventory/production.py", 25, 13, "relays[1]", "host listed twice")],
        edits={
            "inventory/production.py": (
                '"relay2.relay.example.net",\n',
                '"relay1.relay.example.net",\n',
            )
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_input_is_located(case: Case, example_repo: Path) -> None:
    for rel, content in case.files.items():
        path = example_repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for rel in case.removed:
        (example_repo / rel).unlink()
    for rel, (old, new) in case.edits.items():
        path = example_repo / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{rel} no longer contains {old!r}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    result = load_repo(example_repo, today=TODAY)
    if NEW in case.files and case.newco_keys:
        # newco's key pair (a copy of acme's), for every case not about DKIM keys
        dkim = example_repo / "secrets" / "dkim"
        for f in result.findings:
            if f.file == NEW and f.message.startswith("no DKIM key"):
                domain = f.message.split("`relayops dkim generate ")[1].split(" ")[0]
                for suffix in ("key.age", "pub.pem"):
                    (dkim / f"{domain}.n1.{suffix}").write_bytes(
                        (dkim / f"acme.example.rly2026.{suffix}").read_bytes()
                    )
        result = load_repo(example_repo, today=TODAY)

    assert result.repo is None
    got = [(f.file, f.line, f.column, f.field, f.message) for f in result.findings]
    assert len(got) == len(case.expected), "\n".join(map(str, result.findings))
    remaining = list(got)
    for file, line, column, fld, fragment in case.expected:
        match = next(
            (
                g
                for g in remaining
                if g[0] == file
                and (not line or (g[1], g[2]) == (line, column))
                and g[3] == fld
                and fragment in g[4]
            ),
            None,
        )
        assert match is not None, f"no finding {file}:{line}:{column} {fld} {fragment!r} in {got}"
        remaining.remove(match)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_example_repository_is_valid(example_repo: Path) -> None:
    result = load_repo(example_repo, today=TODAY)
    assert result.findings == []
    assert result.repo is not None
    assert len(result.repo.customers) >= 8
