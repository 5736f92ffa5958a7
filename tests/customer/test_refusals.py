"""Every refusal: a `relayops customer <sub>: …` message, exit 2, and no file touched."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from customer.helpers import Run, add_free_dedicated_ip, snapshot

SLUG = (
    "must be a DNS-safe slug: lower-case letters, digits and '-', 1-63 characters, "
    "not starting or ending with '-'"
)
INVALID = "the change would leave the repository invalid (1 error(s) above); nothing written"


def _new(cid: str = "newco", *extra: str, plan: str = "business") -> tuple[str, ...]:
    placement = extra or ("--pool", "shared-eu")
    return (
        "new", cid, "--name", "NewCo", "--contact", "ops@newco.example",
        "--plan", plan, "--timezone", "Europe/Berlin", *placement,
    )  # fmt: skip


@dataclass
class Refusal:
    id: str
    args: tuple[str, ...]
    message: str  # the last stderr line, after `relayops customer <sub>: `
    # a validation finding the table above it shows (for refusals found by validation)
    finding: str = ""
    today: str = "2026-11-23"


REFUSALS = [
    # new
    Refusal(
        "new-existing-id", _new("acme"), "customer 'acme' exists already (customers/acme.yaml)"
    ),
    Refusal("new-bad-id", _new("New_Co"), f"bad customer id 'New_Co': {SLUG}"),
    Refusal(
        "new-no-placement",
        _new("newco", "--timezone", "UTC"),
        "give --pool POOL or --dedicated-ip NAME --warmup SCHEDULE (exactly one placement)",
    ),
    Refusal(
        "new-two-placements",
        _new("newco", "--pool", "shared-eu", "--dedicated-ip", "dedicated-4"),
        "give --pool POOL or --dedicated-ip NAME --warmup SCHEDULE (exactly one placement)",
    ),
    Refusal(
        "new-pool-with-warmup",
        _new("newco", "--pool", "shared-eu", "--warmup", "standard-5w"),
        "--warmup and --warmup-start go with --dedicated-ip, not with --pool",
    ),
    Refusal(
        "new-dedicated-without-warmup",
        _new("newco", "--dedicated-ip", "dedicated-4", plan="pro"),
        "a dedicated IP needs --warmup SCHEDULE (policies/warmup.yaml)",
    ),
    Refusal(
        "new-bad-contact",
        (
            "new",
            "newco",
            "--name",
            "N",
            "--contact",
            "ops",
            "--plan",
            "pro",
            "--timezone",
            "UTC",
            "--pool",
            "shared-eu",
        ),
        "bad contact address 'ops': must be an e-mail address such as 'ops@example.com'",
    ),
    Refusal(
        "new-bad-timezone",
        (
            "new",
            "newco",
            "--name",
            "N",
            "--contact",
            "a@b.example",
            "--plan",
            "pro",
            "--timezone",
            "Mars/Olympus",
            "--pool",
            "shared-eu",
        ),
        "bad time zone 'Mars/Olympus': must be an IANA time zone such as 'Europe/Paris' or 'UTC'",
    ),
    Refusal(
        "new-empty-name",
        (
            "new",
            "newco",
            "--name",
            " ",
            "--contact",
            "a@b.example",
            "--plan",
            "pro",
            "--timezone",
            "UTC",
            "--pool",
            "shared-eu",
        ),
        "bad name '': give the customer's name",
    ),
    Refusal(
        "new-unknown-plan",
        _new("newco", plan="gold"),
        "unknown plan 'gold'; plans: business, pro, starter",
    ),
    Refusal(
        "new-unknown-pool",
        _new("newco", "--pool", "shared-asia"),
        "unknown pool 'shared-asia'; pools: shared-eu, shared-us",
    ),
    Refusal(
        "new-plan-without-dedicated",
        _new("newco", "--dedicated-ip", "dedicated-4", "--warmup", "standard-5w"),
        "plan 'business' does not include a dedicated IP",
    ),
    Refusal(
        "new-unknown-warmup",
        _new("newco", "--dedicated-ip", "dedicated-4", "--warmup", "fast-1w", plan="pro"),
        "unknown warm-up schedule 'fast-1w'; defined: gentle-6w, standard-5w",
    ),
    Refusal(
        "new-unknown-ip",
        _new("newco", "--dedicated-ip", "dedicated-9", "--warmup", "standard-5w", plan="pro"),
        "there is no IP 'dedicated-9' in lab.py; free dedicated IPs: dedicated-4",
    ),
    Refusal(
        "new-pool-ip",
        _new("newco", "--dedicated-ip", "eu-1", "--warmup", "standard-5w", plan="pro"),
        "IP 'eu-1' is in pool 'shared-eu' in lab.py; free dedicated IPs: dedicated-4",
    ),
    Refusal(
        "new-held-ip",
        _new("newco", "--dedicated-ip", "dedicated-1", "--warmup", "standard-5w", plan="pro"),
        "IP 'dedicated-1' serves customer 'globex'; free dedicated IPs: dedicated-4",
    ),
    Refusal(
        "new-quarantined-ip-day-364",
        _new("newco", "--dedicated-ip", "dedicated-2", "--warmup", "standard-5w", plan="pro"),
        "IP 'dedicated-2' was released by customer 'vandelay' on 2026-03-02 "
        "(policies/released-ips.yaml:6); it cannot be reused before 2027-03-02; "
        "free dedicated IPs: dedicated-4",
        today="2027-03-01",
    ),
    # add-domain
    Refusal(
        "add-domain-unknown-customer",
        ("add-domain", "nobody", "nobody.example"),
        "unknown customer 'nobody' (no customers/nobody.yaml)",
    ),
    Refusal(
        "add-domain-bad-domain",
        ("add-domain", "acme", "not a domain"),
        "bad domain 'not a domain': must be a fully qualified domain name such as "
        "'mail.example.com'",
    ),
    Refusal(
        "add-domain-own",
        ("add-domain", "acme", "ACME.example"),
        "customer 'acme' has the domain 'acme.example' already",
    ),
    Refusal(
        "add-domain-other-customer",
        ("add-domain", "acme", "globex.example"),
        "domain 'globex.example' belongs to customer 'globex' (customers/globex.yaml)",
    ),
    Refusal(
        "add-domain-terminated",
        ("add-domain", "vandelay", "vandelay2.example"),
        "customer 'vandelay' is terminated (since 2026-03-02)",
    ),
    Refusal(
        "add-domain-bad-selector",
        ("add-domain", "acme", "acme2.example", "--selector", "Bad_Sel"),
        "bad selector 'Bad_Sel': must be a DKIM selector: one DNS label, lower-case letters, "
        "digits, '-'",
    ),
    Refusal(
        "add-domain-unknown-inventory",
        ("add-domain", "acme", "acme2.example", "--inventory", "staging"),
        "unknown inventory 'staging'; inventories: lab, production",
    ),
    # remove-domain
    Refusal(
        "remove-domain-not-owned",
        ("remove-domain", "acme", "globex.example"),
        "customer 'acme' has no domain 'globex.example'; its domains: acme.example, "
        "acme-mail.example",
    ),
    Refusal(
        "remove-domain-unknown-customer",
        ("remove-domain", "nobody", "acme.example"),
        "unknown customer 'nobody' (no customers/nobody.yaml)",
    ),
    # add-login
    Refusal(
        "add-login-taken-by-other",
        ("add-login", "acme", "globex-mailer"),
        "login 'globex-mailer' is taken by customer 'globex' (customers/globex.yaml)",
    ),
    Refusal(
        "add-login-taken-by-self",
        ("add-login", "acme", "acme-app"),
        "login 'acme-app' is taken by this customer (customers/acme.yaml)",
    ),
    Refusal(
        "add-login-bad",
        ("add-login", "acme", "Acme App"),
        "bad login 'Acme App': must be a lower-case SMTP login: letters, digits and . _ @ + -, "
        "up to 128 characters",
    ),
    Refusal(
        "add-login-terminated",
        ("add-login", "vandelay", "vandelay2"),
        "customer 'vandelay' is terminated (since 2026-03-02)",
    ),
    # remove-login
    Refusal(
        "remove-login-unknown",
        ("remove-login", "acme", "globex-mailer"),
        "customer 'acme' has no login 'globex-mailer'; its logins: acme-app, acme-crm, acme-staff",
    ),
    # set-quota (bounds are the validation's)
    Refusal(
        "set-quota-above-ceiling",
        ("set-quota", "acme", "20001"),
        INVALID,
        finding="exceeds plan 'business' ceiling of 20000 per day",
    ),
    Refusal(
        "set-quota-zero",
        ("set-quota", "acme", "0"),
        INVALID,
        finding="input should be greater than 0",
    ),
    Refusal(
        "set-quota-terminated",
        ("set-quota", "vandelay", "100"),
        "customer 'vandelay' is terminated (since 2026-03-02)",
    ),
    # status
    Refusal(
        "suspend-suspended",
        ("suspend", "hooli", "--reason", "again"),
        "customer 'hooli' is suspended already (since 2026-11-18: renewal invoice unpaid for 5 "
        "days)",
    ),
    Refusal(
        "suspend-terminated",
        ("suspend", "vandelay", "--reason", "late"),
        "customer 'vandelay' is terminated (since 2026-03-02)",
    ),
    Refusal(
        "suspend-short-reason",
        ("suspend", "acme", "--reason", "no"),
        INVALID,
        finding="string should have at least 3 characters",
    ),
    Refusal(
        "suspend-two-lines",
        ("suspend", "acme", "--reason", "unpaid\nsince May"),
        "bad reason 'unpaid\\nsince May': one line of text without control characters",
    ),
    Refusal(
        "terminate-control-character",
        ("terminate", "acme", "--reason", "gone\x85"),
        "bad reason 'gone\\x85': one line of text without control characters",
    ),
    Refusal(
        "new-name-tab",
        (
            "new",
            "newco",
            "--name",
            "New\tCo",
            "--contact",
            "a@b.example",
            "--plan",
            "pro",
            "--timezone",
            "UTC",
            "--pool",
            "shared-eu",
        ),
        "bad name 'New\\tCo': one line of text without control characters",
    ),
    Refusal("reinstate-active", ("reinstate", "acme"), "customer 'acme' is active, not suspended"),
    Refusal(
        "reinstate-terminated",
        ("reinstate", "vandelay"),
        "customer 'vandelay' is terminated (since 2026-03-02); a terminated subscription is not "
        "reinstated: onboard it again with `relayops customer new`",
    ),
    Refusal(
        "terminate-terminated",
        ("terminate", "vandelay", "--reason", "twice"),
        "customer 'vandelay' is terminated (since 2026-03-02)",
    ),
    # swap-ip
    Refusal(
        "swap-ip-pool-customer",
        ("swap-ip", "acme"),
        "customer 'acme' sends from pool 'shared-eu', not a dedicated IP",
    ),
    Refusal(
        "swap-ip-held",
        ("swap-ip", "wayne", "--ip", "dedicated-1"),
        "IP 'dedicated-1' serves customer 'globex'; free dedicated IPs: dedicated-4",
    ),
    Refusal(
        "swap-ip-own",
        ("swap-ip", "wayne", "--ip", "dedicated-3"),
        "IP 'dedicated-3' serves customer 'wayne'; free dedicated IPs: dedicated-4",
    ),
    Refusal(
        "swap-ip-terminated",
        ("swap-ip", "vandelay"),
        "customer 'vandelay' is terminated (since 2026-03-02)",
    ),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.id for r in REFUSALS])
def test_refused_and_nothing_written(refusal: Refusal, run: Run, example_repo: Path) -> None:
    add_free_dedicated_ip(example_repo)  # so "free dedicated IPs" is not always "none"
    before = snapshot(example_repo)
    result = run(*refusal.args, today=refusal.today)
    assert result.exit_code == 2
    assert result.stdout == ""
    sub = refusal.args[0]
    assert result.stderr.splitlines()[-1] == f"relayops customer {sub}: {refusal.message}"
    if refusal.finding:
        table = re.sub(r"[\s│]+", "", result.stderr)  # rich wraps long messages in their cell
        assert re.sub(r"\s+", "", refusal.finding) in table
    else:
        assert len(result.stderr.splitlines()) == 1
    assert snapshot(example_repo) == before


def test_no_free_ip_for_swap(run: Run, example_repo: Path) -> None:
    before = snapshot(example_repo)
    result = run("swap-ip", "wayne")
    assert result.exit_code == 2
    assert result.stderr == (
        "relayops customer swap-ip: no free dedicated IP: each one serves a customer or was "
        "released less than 365 days ago; add one to inventory/*.py\n"
    )
    assert snapshot(example_repo) == before


def test_invalid_repository_is_not_edited(run: Run, example_repo: Path) -> None:
    path = example_repo / "customers/initech.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("plan: starter", "plan: gold"))
    before = snapshot(example_repo)
    result = run("set-quota", "acme", "12000")
    assert result.exit_code == 2
    assert "customers/initech.yaml:5:1" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"relayops customer set-quota: {example_repo} is invalid before this change "
        "(1 error(s) above); fix it first (relayops validate)"
    )
    assert snapshot(example_repo) == before


def test_missing_recipients_refuses_add_domain(run: Run, example_repo: Path) -> None:
    (example_repo / "secrets/recipients.txt").unlink()
    before = snapshot(example_repo)
    result = run("add-domain", "acme", "acme-news.example")
    assert result.exit_code == 2
    assert result.stderr == (
        f"relayops customer add-domain: {example_repo}/secrets/recipients.txt is missing: list "
        "the age public keys (age1...) allowed to decrypt secrets\n"
    )
    assert snapshot(example_repo) == before


def test_half_a_key_pair_refuses_add_domain(run: Run, example_repo: Path) -> None:
    public = example_repo / "secrets/dkim/acme-news.example.rly2026.pub.pem"
    public.write_bytes(b"-----BEGIN PUBLIC KEY-----\n")
    before = snapshot(example_repo)
    result = run("add-domain", "acme", "acme-news.example")
    assert result.exit_code == 2
    assert result.stderr == (
        f"relayops customer add-domain: {public} exists without "
        "acme-news.example.rly2026.key.age: restore the pair or use another selector\n"
    )
    assert snapshot(example_repo) == before
