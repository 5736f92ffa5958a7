"""`relayops dkim rotate DOMAIN`: the next step of a DKIM key rotation (see relayops.rotation).

Each run edits the owning customer's file with the customer commands' round-trip editor
(`customer_edits.set_dkim`: comments, order and quoting kept), has the whole repository
validated with the edit and any new key pair laid over it, and writes only then
(`commands.staged`, as `relayops customer …` does).
The switch step first looks the new selector up in DNS: signing with a key receivers
cannot find yet would fail every message, so it refuses until the record is live.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
import dns.resolver

from relayops.checks import resolver as q
from relayops.checks.dns import expected_key_bytes, judge_dkim
from relayops.checks.result import Status
from relayops.commands.options import EXIT_CODES_HELP, EXIT_FAILED, fail, repo_option
from relayops.commands.repo import print_findings
from relayops.commands.staged import checked, commit, dkim_key_changes, edited
from relayops.compile.dkim import key_files, public_key_der
from relayops.compile.dns_records import dkim_txt
from relayops.crossref import customer_file
from relayops.customer_edits import set_dkim
from relayops.loader import load_repo
from relayops.model import Customer, Domain
from relayops.model.fields import Selector
from relayops.rotation import DEFAULT_KEEP_DAYS, Rotation, RotationError, Step, rotate


def _owner(root: Path, domain: str) -> tuple[Customer, Domain]:
    result = load_repo(root)
    if not result.ok or result.repo is None:
        print_findings(result.findings)
        fail("the repository is invalid; fix it before rotating")
    for customer in result.repo.customers.values():
        for d in customer.domains:
            if d.name.lower() == domain.lower():
                return customer, d
    fail(f"no customer has the sender domain {domain!r}")


def _live(domain: str, selector: str, root: Path, nameserver: str | None) -> str | None:
    """None when DNS serves exactly the repository's key for `selector`, else why not."""
    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [nameserver]
    pem = key_files(root, domain, selector).public_pem
    name = f"{selector}._domainkey.{domain}"
    try:
        result = judge_dkim(
            domain, "dkim", selector, q.txt(resolver, name), expected_key_bytes(pem.read_text())
        )
    except q.DnsQueryError as exc:
        return f"{name}: {exc}"
    return None if result.status is Status.OK else f"{name}: {result.message}"


@click.command("rotate", epilog=EXIT_CODES_HELP)
@click.argument("domain")
@click.option("--selector", help="The new selector (publish step; default: letters + date).")
@click.option(
    "--keep-days",
    type=click.IntRange(1, 365),
    default=DEFAULT_KEEP_DAYS,
    show_default=True,
    help="Switch step: days the old selector stays published.",
)
@click.option("--nameserver", help="Switch step: ask this DNS server (default: the system's).")
@click.option("--force", is_flag=True, help="Switch without the DNS look-up / retire early.")
@repo_option
def rotate_command(
    domain: str,
    selector: str | None,
    keep_days: int,
    nameserver: str | None,
    force: bool,
    repo: Path,
) -> None:
    """Take the next step of DOMAIN's key rotation: publish, switch, then retire.

    Exit codes: 0 done, 1 the new key is not live in DNS yet, 2 invalid input.
    """
    if selector is not None:
        selector = checked(Selector, selector, "selector")
    customer, d = _owner(repo, domain)
    today = date.today()
    try:
        step = rotate(d.dkim, today=today, selector=selector, keep_days=keep_days,
                      force=force)  # fmt: skip
    except RotationError as exc:
        fail(str(exc))
    if step.step is Step.SWITCH and not force:
        assert d.dkim.next is not None
        problem = _live(d.name, d.dkim.next.selector, repo, nameserver)
        if problem is not None:
            fail(f"the new key is not live yet ({problem}); publish it first", code=EXIT_FAILED)
    rel = customer_file(customer.id)
    text = (repo / rel).read_text(encoding="utf-8")
    changes: dict[str, bytes | None] = {}
    if step.new_selector is not None:
        changes |= dkim_key_changes(repo, d.name, step.new_selector)
    changes[rel] = edited(lambda: set_dkim(text, rel, domain=d.name, dkim=step.new_dkim))
    commit(repo, changes, today=today)
    _report(step.step, d.name, step, repo)


def _report(step: Step, domain: str, rotation: Rotation, repo: Path) -> None:
    if step is Step.PUBLISH:
        sel = rotation.new_selector
        assert sel is not None
        der = public_key_der(repo, domain, sel)
        assert der is not None
        click.echo(f"{domain}: new selector {sel} published alongside the signing one.")
        click.echo("Deploy, then publish this record; `relayops dkim rotate` again switches:")
        click.echo(f'  {sel}._domainkey.{domain} TXT "{dkim_txt(der)}"')
    elif step is Step.SWITCH:
        previous = rotation.new_dkim["previous"]
        click.echo(
            f"{domain}: signing switches to {rotation.new_dkim['selector']} at the next deploy; "
            f"{previous['selector']} stays published until {previous['retire_after']}."
        )
    else:
        click.echo(
            f"{domain}: selector {rotation.retired_selector} retired; its DNS record may go "
            "and its key files under secrets/dkim/ may be deleted."
        )
