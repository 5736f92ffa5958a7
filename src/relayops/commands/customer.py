"""`relayops customer …`: operator edits of `customers/<id>.yaml`, reviewed as a diff.

Every subcommand checks the request against the repository (unknown customer,
taken login, …), computes the new files with round-trip YAML (comments, order and
quoting kept), validates the whole repository as it would be, and writes only if
it is valid. Refusals: `relayops customer <sub>: …`, exit 2, nothing written.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path

import click

from relayops import customer_edits as edits
from relayops.commands.options import (
    EXIT_CODES_HELP,
    emit_json,
    fail,
    inventory_name,
    inventory_option,
    json_option,
    repo_option,
)
from relayops.commands.repo import print_findings
from relayops.commands.staged import checked, commit, dkim_key_changes, edited
from relayops.compile.dkim import key_files, public_key_der
from relayops.compile.dns_records import domain_records, spf_record
from relayops.crossref import customer_file
from relayops.loader import load_repo
from relayops.model import Customer, Repo, Status
from relayops.model.fields import DomainName, Email, Login, Selector, Slug, TimeZone
from relayops.passwords import SCHEME, dovecot_hash, new_password
from relayops.quarantine import (
    IP_QUARANTINE,
    LEDGER_FILE,
    free_dedicated_ips,
    ledger_lines,
    unavailable_reason,
)
from relayops.staging import Changes

_TODAY = "relayops.customer.today"
_DATE = click.DateTime(formats=["%Y-%m-%d"])
SWAP_REASON = "paid IP swap"


@click.group(epilog=EXIT_CODES_HELP)
@click.option(
    "--today",
    type=_DATE,
    hidden=True,
    help="The date the change is made (tests pin the clock with it; default: today, UTC).",
)
@click.pass_context
def customer(ctx: click.Context, today: datetime | None) -> None:
    """Edit customers/<id>.yaml: validated before anything is written, comments kept."""
    ctx.meta[_TODAY] = today.date() if today is not None else datetime.now(UTC).date()


# -- shared steps ----------------------------------------------------------------
def _today() -> date:
    day: date = click.get_current_context().meta[_TODAY]
    return day


def _one_line(value: str, what: str) -> str:
    """Free text for a YAML field: one line, no control characters (YAML would fold them)."""
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        fail(f"bad {what} {value!r}: one line of text without control characters")
    return value


def _load(root: Path) -> Repo:
    """The repository as it is; a change to an invalid repository is refused."""
    result = load_repo(root, today=_today())
    if result.repo is None:
        print_findings(result.findings)
        fail(
            f"{root} is invalid before this change ({len(result.findings)} error(s) above); "
            "fix it first (relayops validate)"
        )
    return result.repo


def _existing(repo: Repo, cid: str) -> Customer:
    found = repo.customers.get(cid)
    if found is None:
        fail(f"unknown customer '{cid}' (no {customer_file(cid)})")
    return found


def _not_terminated(found: Customer) -> None:
    if found.status is Status.TERMINATED:
        fail(f"customer '{found.id}' is terminated (since {found.status_date})")


def _known_inventory(repo: Repo, inventory: str) -> None:
    if inventory_name(inventory) not in repo.inventories:
        known = ", ".join(sorted(repo.inventories))
        fail(f"unknown inventory '{inventory}'; inventories: {known}")


def _free_ips(root: Path, repo: Repo) -> list[str]:
    return free_dedicated_ips(repo, today=_today(), ledger_lines=_lines(root))


def _why_taken(root: Path, repo: Repo, ip: str) -> str | None:
    return unavailable_reason(repo, ip, today=_today(), ledger_lines=_lines(root))


def _lines(root: Path) -> list[int]:
    path = root / LEDGER_FILE
    return ledger_lines(path.read_bytes()) if path.exists() else []


def _text(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def _commit(root: Path, changes: Changes) -> Repo:
    return commit(root, changes, today=_today())


def _written(changes: Changes) -> None:
    for rel, content in changes.items():
        click.echo(f"{'removed' if content is None else 'wrote'} {rel}")


# -- onboarding --------------------------------------------------------------------
@customer.command("new", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.option("--name", required=True, help="The customer's name.")
@click.option("--contact", required=True, help="Receives quota warnings and notices.")
@click.option("--plan", required=True, help="A plan of policies/plans.yaml.")
@click.option("--timezone", required=True, help="IANA zone of the quota day, e.g. Europe/Paris.")
@click.option("--pool", help="Send from this shared pool of the inventory.")
@click.option("--dedicated-ip", "dedicated_ip", help="Send from this free dedicated IP.")
@click.option("--warmup", help="Warm-up schedule of policies/warmup.yaml (dedicated IP).")
@click.option("--warmup-start", "warmup_start", type=_DATE, help="Day 1 of the warm-up.")
@repo_option
def new(
    cid: str,
    name: str,
    contact: str,
    plan: str,
    timezone: str,
    pool: str | None,
    dedicated_ip: str | None,
    warmup: str | None,
    warmup_start: datetime | None,
    repo: Path,
) -> None:
    """Create customers/ID.yaml, without domains or logins yet (add-domain, add-login)."""
    checked(Slug, cid, "customer id")
    rel = customer_file(cid)
    if (repo / rel).exists():
        fail(f"customer '{cid}' exists already ({rel})")
    if (pool is None) == (dedicated_ip is None):
        fail("give --pool POOL or --dedicated-ip NAME --warmup SCHEDULE (exactly one placement)")
    if dedicated_ip is None and (warmup is not None or warmup_start is not None):
        fail("--warmup and --warmup-start go with --dedicated-ip, not with --pool")
    if dedicated_ip is not None and warmup is None:
        fail("a dedicated IP needs --warmup SCHEDULE (policies/warmup.yaml)")
    if not name.strip():
        fail("bad name '': give the customer's name")
    _one_line(name, "name")
    contact = checked(Email, contact, "contact address")
    checked(TimeZone, timezone, "time zone")
    current = _load(repo)
    if plan not in current.plans:
        fail(f"unknown plan '{plan}'; plans: {', '.join(sorted(current.plans))}")
    if pool is not None:
        pools = sorted({p for inv in current.inventories.values() for p in inv.pools()})
        if pool not in pools:
            fail(f"unknown pool '{pool}'; pools: {', '.join(pools)}")
    if dedicated_ip is not None:
        if not current.plans[plan].dedicated_ip:
            fail(f"plan '{plan}' does not include a dedicated IP")
        if warmup not in current.warmup:
            fail(
                f"unknown warm-up schedule '{warmup}'; defined: {', '.join(sorted(current.warmup))}"
            )
        why = _why_taken(repo, current, dedicated_ip)
        if why is not None:
            free = _free_ips(repo, current)
            fail(f"{why}; free dedicated IPs: {', '.join(free) or 'none'}")
    text = edits.new_customer(
        name=name.strip(),
        contact=contact,
        plan=plan,
        timezone=timezone,
        pool=pool,
        dedicated_ip=dedicated_ip,
        warmup=warmup,
        warmup_start=(warmup_start.date() if warmup_start else _today()) if warmup else None,
    )
    changes = {rel: text.encode("utf-8")}
    _commit(repo, changes)
    _written(changes)
    click.echo(
        f"next: relayops customer add-domain {cid} DOMAIN, relayops customer add-login {cid} LOGIN"
    )


# -- domains ---------------------------------------------------------------------
@customer.command("add-domain", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.argument("domain")
@click.option(
    "--selector",
    help="DKIM selector; default: the one the customer's first domain uses, else rly<year>.",
)
@inventory_option
@repo_option
def add_domain(cid: str, domain: str, selector: str | None, inventory: str, repo: Path) -> None:
    """Add a sender domain, make its DKIM key, print the DNS records the customer publishes."""
    current = _load(repo)
    found = _existing(current, cid)
    _not_terminated(found)
    name = checked(DomainName, domain, "domain")
    written_as = domain.strip().rstrip(".").lower()
    if any(d.name == name for d in found.domains):
        fail(f"customer '{cid}' has the domain '{name}' already")
    for other in sorted(current.customers):
        if any(d.name == name for d in current.customers[other].domains):
            fail(f"domain '{name}' belongs to customer '{other}' ({customer_file(other)})")
    if selector is None:
        selector = found.domains[0].dkim.selector if found.domains else f"rly{_today().year}"
    selector = checked(Selector, selector, "selector")
    wanted = inventory_name(inventory)
    _known_inventory(current, inventory)
    rel = customer_file(cid)
    text = edited(
        lambda: edits.add_domain(_text(repo, rel), rel, domain=written_as, selector=selector)
    )
    changes: dict[str, bytes | None] = {**dkim_key_changes(repo, name, selector), rel: text}
    after = _commit(repo, changes)
    _written({k: v for k, v in changes.items() if k == rel})
    files = key_files(repo, name, selector)
    state = "generated" if len(changes) > 1 else "kept (it exists already)"
    click.echo(
        f"DKIM key {name} selector {selector} {state}: {files.private_age}, {files.public_pem}"
    )
    customer_after = after.customers[cid]
    entry = next(d for d in customer_after.domains if d.name == name)
    records = domain_records(
        customer_after,
        entry,
        after.inventories[wanted],
        after.service,
        {selector: public_key_der(repo, name, selector)},
    )
    click.echo(f"DNS records the customer publishes for {name} (inventory {wanted}):")
    for record in records:
        click.echo(f"; {record.purpose}")
        click.echo(record.zone_line())


@customer.command("remove-domain", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.argument("domain")
@repo_option
def remove_domain(cid: str, domain: str, repo: Path) -> None:
    """Remove a sender domain (its DKIM key stays under secrets/ until deleted by hand)."""
    current = _load(repo)
    found = _existing(current, cid)
    name = checked(DomainName, domain, "domain")
    if not any(d.name == name for d in found.domains):
        owned = ", ".join(d.name for d in found.domains) or "none"
        fail(f"customer '{cid}' has no domain '{name}'; its domains: {owned}")
    rel = customer_file(cid)
    changes = {rel: edited(lambda: edits.remove_domain(_text(repo, rel), rel, domain=name))}
    _commit(repo, changes)
    _written(changes)


# -- logins ----------------------------------------------------------------------
@customer.command("add-login", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.argument("login")
@repo_option
@json_option
def add_login(cid: str, login: str, repo: Path, as_json: bool) -> None:
    """Add an SMTP AUTH login with a new random password, printed once; only its hash is kept."""
    current = _load(repo)
    found = _existing(current, cid)
    _not_terminated(found)
    login = checked(Login, login, "login")
    for other in sorted(current.customers):
        if any(u.login == login for u in current.customers[other].users):
            owner = "this customer" if other == cid else f"customer '{other}'"
            fail(f"login '{login}' is taken by {owner} ({customer_file(other)})")
    password = new_password()
    hashed = dovecot_hash(password)
    rel = customer_file(cid)
    changes = {
        rel: edited(
            lambda: edits.add_login(_text(repo, rel), rel, login=login, password_hash=hashed)
        )
    }
    _commit(repo, changes)
    if as_json:  # for a provisioning script that hands the password on
        emit_json(
            {"ok": True, "customer": cid, "login": login, "password": password, "scheme": SCHEME}
        )
        return
    _written(changes)
    click.echo(f"login {login}: {{{SCHEME}}} hash stored")
    click.echo(f"password for {login} (shown once, stored nowhere): {password}")


@customer.command("remove-login", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.argument("login")
@repo_option
def remove_login(cid: str, login: str, repo: Path) -> None:
    """Remove an SMTP AUTH login: it stops authenticating at the next deploy."""
    current = _load(repo)
    found = _existing(current, cid)
    if not any(u.login == login for u in found.users):
        logins = ", ".join(u.login for u in found.users) or "none"
        fail(f"customer '{cid}' has no login '{login}'; its logins: {logins}")
    rel = customer_file(cid)
    changes = {rel: edited(lambda: edits.remove_login(_text(repo, rel), rel, login=login))}
    _commit(repo, changes)
    _written(changes)


# -- quota and status ------------------------------------------------------------
@customer.command("set-quota", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.argument("quota", type=int)
@repo_option
def set_quota(cid: str, quota: int, repo: Path) -> None:
    """Set quota_override: the daily quota, up to the plan's max_daily_quota."""
    current = _load(repo)
    _not_terminated(_existing(current, cid))
    rel = customer_file(cid)
    changes = {rel: edited(lambda: edits.set_quota(_text(repo, rel), rel, quota=quota))}
    _commit(repo, changes)
    _written(changes)


def _set_status(repo: Path, cid: str, status: Status, reason: str) -> Changes:
    rel = customer_file(cid)
    text = edited(
        lambda: edits.set_status(_text(repo, rel), rel, status=status, reason=reason, day=_today())
    )
    return {rel: text}


@customer.command("suspend", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.option("--reason", required=True, help="Why: the policy daemon's refusal quotes it.")
@repo_option
def suspend(cid: str, reason: str, repo: Path) -> None:
    """Suspend an active customer: its logins stop authenticating at the next deploy."""
    _one_line(reason, "reason")
    found = _existing(_load(repo), cid)
    _not_terminated(found)
    if found.status is Status.SUSPENDED:
        fail(
            f"customer '{cid}' is suspended already "
            f"(since {found.status_date}: {found.status_reason})"
        )
    changes = _set_status(repo, cid, Status.SUSPENDED, reason)
    _commit(repo, changes)
    _written(changes)


@customer.command("reinstate", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@repo_option
def reinstate(cid: str, repo: Path) -> None:
    """Make a suspended customer active again."""
    found = _existing(_load(repo), cid)
    if found.status is Status.ACTIVE:
        fail(f"customer '{cid}' is active, not suspended")
    if found.status is Status.TERMINATED:
        fail(
            f"customer '{cid}' is terminated (since {found.status_date}); a terminated "
            "subscription is not reinstated: onboard it again with `relayops customer new`"
        )
    rel = customer_file(cid)
    changes = {rel: edited(lambda: edits.clear_status(_text(repo, rel), rel))}
    _commit(repo, changes)
    _written(changes)


def _release(repo: Path, *, ip: str, cid: str, reason: str) -> Changes:
    """The ledger with this release appended: the IP's year of quarantine starts today."""
    path = repo / LEDGER_FILE
    current = path.read_text(encoding="utf-8") if path.exists() else None
    text = edited(
        lambda: edits.ledger_with(current, ip=ip, released=_today(), customer=cid, reason=reason)
    )
    return {LEDGER_FILE: text}


@customer.command("terminate", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.option("--reason", required=True, help="Why the subscription ends.")
@repo_option
def terminate(cid: str, reason: str, repo: Path) -> None:
    """Terminate a subscription; its dedicated IP, if any, enters a year of quarantine."""
    _one_line(reason, "reason")
    found = _existing(_load(repo), cid)
    _not_terminated(found)
    changes = dict(_set_status(repo, cid, Status.TERMINATED, reason))
    ip = found.placement.dedicated_ip
    if ip is not None:
        changes = {**_release(repo, ip=ip, cid=cid, reason=f"terminated: {reason}"), **changes}
    _commit(repo, changes)
    _written(changes)
    if ip is not None:
        click.echo(
            f"IP {ip} released on {_today()}: no one else gets it before {_today() + IP_QUARANTINE}"
        )


@customer.command("swap-ip", epilog=EXIT_CODES_HELP)
@click.argument("cid", metavar="ID")
@click.option("--ip", "wanted", help="The new dedicated IP; default: the first free one.")
@click.option("--reason", default=SWAP_REASON, show_default=True, help="Recorded in the ledger.")
@click.option(
    "--warmup-start",
    "warmup_start",
    type=_DATE,
    help="Day 1 of the new IP's warm-up (default: today).",
)
@inventory_option
@repo_option
def swap_ip(
    cid: str,
    wanted: str | None,
    reason: str,
    warmup_start: datetime | None,
    inventory: str,
    repo: Path,
) -> None:
    """Move a customer to a free dedicated IP; the old one goes into the released-IP ledger."""
    _one_line(reason, "reason")
    current = _load(repo)
    found = _existing(current, cid)
    _not_terminated(found)
    old = found.placement.dedicated_ip
    if old is None:
        fail(f"customer '{cid}' sends from pool '{found.placement.pool}', not a dedicated IP")
    free = _free_ips(repo, current)
    if wanted is None:
        if not free:
            fail(
                "no free dedicated IP: each one serves a customer or was released less than "
                f"{IP_QUARANTINE.days} days ago; add one to inventory/*.py"
            )
        wanted = free[0]
    why = _why_taken(repo, current, wanted)
    if why is not None:
        fail(f"{why}; free dedicated IPs: {', '.join(free) or 'none'}")
    shown = inventory_name(inventory)
    _known_inventory(current, inventory)
    start = warmup_start.date() if warmup_start else _today()
    rel = customer_file(cid)
    changes = {
        **_release(repo, ip=old, cid=cid, reason=reason),
        rel: edited(
            lambda: edits.move_dedicated_ip(_text(repo, rel), rel, ip=wanted, warmup_start=start)
        ),
    }
    after = _commit(repo, changes)
    _written(changes)
    click.echo(
        f"customer {cid}: dedicated IP {old} -> {wanted}; warm-up restarts on {start}; "
        f"{old} quarantined until {_today() + IP_QUARANTINE}"
    )
    moved = after.customers[cid]
    spf = spf_record(moved, after.inventories[shown], after.service)
    click.echo(f"SPF record the customer publishes at each domain (inventory {shown}):")
    for entry in moved.domains:
        click.echo(f'{entry.name}. IN TXT "{spf}"')
