"""`relayops audit`: the policy history as field-level changes, or the policy at a date."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from pathlib import Path

import click
from rich.console import Console

from relayops.audit import gitlog, history, render
from relayops.commands.options import EXIT_CODES_HELP, emit_json, fail, json_option, repo_option


def parse_when(text: str, option: str, *, end_of_day: bool) -> datetime:
    """`2026-03-01` (the day's start, or its end for --until/--at) or an ISO 8601 time.

    A time without a zone is UTC, so the answer does not depend on the machine.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max if end_of_day else time.min, UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"bad date {text!r} for {option}: expected YYYY-MM-DD or an ISO 8601 time")
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@click.option("--customer", metavar="ID", help="Only changes to this customer (renames followed).")
@click.option("--since", metavar="DATE", help="Only commits landed on or after DATE.")
@click.option("--until", metavar="DATE", help="Only commits landed on or before DATE.")
@click.option("--field", "field_path", metavar="F", help="Only this field (and fields under it).")
@click.option(
    "--at", "at", metavar="DATE", help="Show the policy as it stood at DATE instead of changes."
)
@click.option(
    "--allowed-signers",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="SSH allowed-signers file for signature checks (else the repository's git config).",
)
@json_option
@click.option("--markdown", is_flag=True, help="A Markdown table (for a pull request or report).")
def audit(
    repo: Path,
    customer: str | None,
    since: str | None,
    until: str | None,
    field_path: str | None,
    at: str | None,
    allowed_signers: Path | None,
    as_json: bool,
    markdown: bool,
) -> None:
    """Who changed which policy field, when, in which pull request, signed or not.

    Reads the first-parent history of HEAD; a merge is compared with its first
    parent, so a pull request is one entry. Signatures are checked as
    `git verify-commit` does, with the repository's git configuration
    (gpg.ssh.allowedSignersFile for SSH signatures).
    """
    if as_json and markdown:
        fail("give --json or --markdown, not both")
    if at is not None and (since or until or field_path):
        fail("--at shows one moment: it does not combine with --since, --until or --field")
    since_at = parse_when(since, "--since", end_of_day=False) if since else None
    until_at = parse_when(until, "--until", end_of_day=True) if until else None
    at_when = parse_when(at, "--at", end_of_day=True) if at else None
    if since_at and until_at and since_at > until_at:
        fail(f"--since {since} is after --until {until}")
    config = [f"gpg.ssh.allowedSignersFile={allowed_signers.resolve()}"] if allowed_signers else []
    try:
        git = gitlog.open_repo(repo, config=config)
        if at is not None and at_when is not None:
            _show_at(git, at, at_when, customer, as_json=as_json, markdown=markdown)
            return
        commits = history.in_range(gitlog.first_parent_log(git), since_at, until_at)
        blobs = gitlog.read_blobs(git, history.needed_blobs(commits))
    except gitlog.GitError as exc:
        fail(str(exc))
    entries = history.select(
        history.build(commits, blobs), customer=customer, field_path=field_path
    )
    if as_json:
        filters = {"customer": customer, "since": since, "until": until, "field": field_path}
        emit_json(render.history_json(entries, filters))
    elif markdown:
        click.echo(render.history_markdown(entries), nl=False)
    else:
        # piped output is not cut to 80 columns: the change column needs the room
        render.history_table(entries, Console() if sys.stdout.isatty() else Console(width=160))


def _show_at(
    git: gitlog.GitRepo,
    at: str,
    when: datetime,
    customer: str | None,
    *,
    as_json: bool,
    markdown: bool,
) -> None:
    commit = gitlog.commit_at(git, when)
    if commit is None:
        fail(f"no commit on the first-parent history of HEAD at or before {at}")
    # one customer needs only its file and the plans (its quota may be the plan's)
    wanted = (f"customers/{customer}.yaml", "policies/plans.yaml") if customer else None
    paths = gitlog.tree_blobs(git, commit.sha, paths=wanted or gitlog.POLICY_PATHS)
    contents = gitlog.read_blobs(git, paths.values())
    snap = history.snapshot(commit, {p: contents[oid] for p, oid in paths.items()})
    if customer is not None and snap.customer(customer) is None:
        where = f"at {at} (commit {commit.sha[:10]})"
        broken = snap.data.get("unparseable", {}).get(f"customers/{customer}.yaml")
        if broken is not None:
            fail(f"customers/{customer}.yaml did not parse {where}: {broken}")
        fail(f"customer {customer!r} did not exist {where}")
    if as_json:
        emit_json(render.at_json(snap, at, customer))
    else:
        click.echo(render.at_text(snap, at, customer, markdown=markdown), nl=False)
