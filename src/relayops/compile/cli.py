"""`relayops render`, `relayops plan` and `relayops dkim …` (registered in relayops.cli)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from relayops.commands.dkim_rotate import rotate_command
from relayops.commands.options import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    emit_json,
    fail,
    inventory_option,
    json_option,
    repo_option,
)
from relayops.commands.repo import inventory_of, load_valid_repo
from relayops.compile.dkim import (
    DkimKeyError,
    decrypt_key,
    generate_key,
    key_files,
    public_key_der,
)
from relayops.compile.dns_records import dkim_txt
from relayops.compile.files import HostConfig
from relayops.compile.gitref import GitRefError, toplevel, worktree
from relayops.compile.host import CompileError, compile_inventory
from relayops.compile.loading import load_frozen
from relayops.compile.plan import make_plan
from relayops.compile.render import write_hosts
from relayops.compile.report import GITHUB_COMMENT_LIMIT, plan_json, plan_markdown
from relayops.compile.templates import DEFAULT_TEMPLATE_DIR, TemplateError, Templates
from relayops.compile.toolcheck import ToolMissing, check_host
from relayops.model import Inventory, Repo


def _compile(repo: Repo, inventory: Inventory, templates: Templates) -> dict[str, HostConfig]:
    try:
        return compile_inventory(repo, inventory, templates=templates)
    except (CompileError, TemplateError) as exc:
        fail(f"cannot compile inventory {inventory.name}: {exc}")


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@inventory_option
@click.option("--host", "hosts", multiple=True, help="Render only this host (repeatable).")
@click.option("--all", "all_hosts", is_flag=True, help="Render every host (the default).")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory receiving OUT/<host>/etc/... and OUT/<host>.manifest.json.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Also have postfix, postconf, opendkim and doveconf check each host (exit 1 if not).",
)
@json_option
def render(
    repo: Path,
    inventory: str,
    hosts: tuple[str, ...],
    all_hosts: bool,
    out: Path,
    check: bool,
    as_json: bool,
) -> None:
    """Write the files of each relay host, exactly as the deploy would upload them."""
    if hosts and all_hosts:
        raise click.UsageError("give --host NAME or --all, not both")
    loaded = load_valid_repo(repo, as_json=as_json)
    chosen = inventory_of(loaded, inventory)
    configs = _compile(loaded, chosen, Templates())
    if hosts:
        unknown = sorted(set(hosts) - set(configs))
        if unknown:
            fail(f"unknown host(s) {', '.join(unknown)}; hosts: {', '.join(sorted(configs))}")
        configs = {name: configs[name] for name in hosts}
    write_hosts(configs, out)
    summary: list[dict[str, Any]] = [
        {
            "host": c.host,
            "files": len(c.files),
            "secrets": len(c.secrets),
            "path": str(out / c.host),
        }
        for c in configs.values()
    ]
    failed = False
    if check:
        for item, config in zip(summary, configs.values(), strict=True):
            with tempfile.TemporaryDirectory(prefix="relayops-check-") as scratch:
                try:
                    results = check_host(config, Path(scratch))
                except ToolMissing as exc:
                    fail(str(exc))
            item["checks"] = [{"tool": r.tool, "ok": r.ok, "output": r.output} for r in results]
            failed = failed or not all(r.ok for r in results)
    if as_json:
        emit_json({"ok": not failed, "inventory": chosen.name, "hosts": summary})
    else:
        for item in summary:
            click.echo(
                f"{item['host']}: {item['files']} files, {item['secrets']} secrets "
                f"(decrypted at deploy) -> {item['path']}"
            )
            for result in item.get("checks", []):
                state = "ok" if result["ok"] else "FAILED"
                click.echo(f"  {result['tool']}: {state}")
                if not result["ok"]:
                    click.echo("    " + result["output"].replace("\n", "\n    "))
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _keys(root: Path) -> Callable[[str, str], bytes | None]:
    return lambda domain, selector: public_key_der(root, domain, selector)


@click.command(epilog=EXIT_CODES_HELP)
@repo_option
@click.option("--base", default="HEAD", show_default=True, help="Git ref to compare with.")
@inventory_option
@json_option
@click.option(
    "--markdown", "as_markdown", is_flag=True, help="Markdown for a pull request (the default)."
)
@click.option(
    "--max-chars",
    type=click.IntRange(1000, GITHUB_COMMENT_LIMIT),
    default=None,
    help="Markdown: cut the plan to this many characters with a note (a PR comment "
    f"holds at most {GITHUB_COMMENT_LIMIT}).",
)
@click.option(
    "--full-plan-url",
    default=None,
    metavar="URL",
    help="Markdown: where the truncation note says the full plan is (CI: the run's artifacts).",
)
def plan(
    repo: Path,
    base: str,
    inventory: str,
    as_json: bool,
    as_markdown: bool,
    max_chars: int | None,
    full_plan_url: str | None,
) -> None:
    """Show what the working tree changes against BASE: risks, customers, DNS, host files."""
    if as_json and as_markdown:
        raise click.UsageError("give --json or --markdown, not both")
    head = load_valid_repo(repo, as_json=as_json)
    chosen = inventory_of(head, inventory)
    name = chosen.name
    templates = Templates()
    head_hosts = _compile(head, chosen, templates)
    notes: list[str] = []
    try:
        with worktree(repo, base) as base_root:
            result = load_frozen(base_root)
            base_repo = result.repo
            base_hosts: dict[str, HostConfig] = {}
            if base_repo is None:
                notes.append(
                    f"`{base}` does not validate ({len(result.findings)} error(s)): "
                    "everything is shown as new."
                )
            elif name not in base_repo.inventories:
                notes.append(f"`{base}` has no inventory {name}.")
            else:
                base_hosts = _compile_base(base_repo, base_root, name, templates, notes)
            the_plan = make_plan(
                base_ref=base,
                inventory_name=name,
                base=base_repo,
                head=head,
                base_hosts=base_hosts,
                head_hosts=head_hosts,
                head_keys=_keys(repo),
                base_keys=_keys(base_root),
                notes=notes,
                today=date.today(),
            )
    except GitRefError as exc:
        fail(str(exc))
    if as_json:
        click.echo(plan_json(the_plan), nl=False)
        return
    text = plan_markdown(the_plan, max_chars=max_chars, full_plan_url=full_plan_url)
    click.echo(text, nl=False)


def _compile_base(
    repo: Repo, root: Path, inventory_name: str, current: Templates, notes: list[str]
) -> dict[str, HostConfig]:
    """Compile the base with its own templates when it has them, so template edits show."""
    inventory = repo.inventories[inventory_name]
    own = toplevel(root) / "deploys" / "templates"
    if own.is_dir() and own.resolve() != DEFAULT_TEMPLATE_DIR.resolve():
        try:
            return compile_inventory(repo, inventory, templates=Templates(own))
        except TemplateError as exc:
            notes.append(
                f"base templates unusable with this engine ({exc}); "
                "base rendered with the current templates"
            )
    return compile_inventory(repo, inventory, templates=current)


@click.group(epilog=EXIT_CODES_HELP)
def dkim() -> None:
    """DKIM keys: generated here, stored age-encrypted under secrets/dkim/."""


@dkim.command("generate", epilog=EXIT_CODES_HELP)
@click.argument("domains", nargs=-1)
@click.option("--selector", help="DKIM selector (as in the customer's domains[].dkim).")
@click.option(
    "--missing",
    is_flag=True,
    help="Generate every key the customers' domains need and the repo lacks.",
)
@repo_option
@json_option
def dkim_generate(
    domains: tuple[str, ...], selector: str | None, missing: bool, repo: Path, as_json: bool
) -> None:
    """Make an RSA-2048 key: private part encrypted to secrets/recipients.txt, public beside."""
    pairs: list[tuple[str, str]] = []
    if missing:
        # The keys it writes are what the DKIM-key rule asks for: that rule alone is waived.
        loaded = load_valid_repo(repo, require_dkim_keys=False)
        pairs = sorted(
            (d.name, sel)
            for c in loaded.customers.values()
            for d in c.domains
            for sel in d.dkim.published
            if not key_files(repo, d.name, sel).private_age.exists()
        )
    elif not domains or selector is None:
        raise click.UsageError("give DOMAIN... --selector S, or --missing")
    else:
        pairs = [(d, selector) for d in domains]
    written: list[dict[str, str]] = []
    try:
        for domain, sel in pairs:
            files = generate_key(repo, domain, sel)
            written.append(
                {
                    "domain": domain,
                    "selector": sel,
                    "private_age": str(files.private_age),
                    "public_pem": str(files.public_pem),
                }
            )
            if not as_json:
                click.echo(f"{domain} {sel}: {files.private_age} (encrypted), {files.public_pem}")
    except DkimKeyError as exc:
        fail(str(exc))
    if as_json:
        emit_json({"ok": True, "keys": written})
    elif not pairs:
        click.echo("no key missing")


@dkim.command("record", epilog=EXIT_CODES_HELP)
@click.argument("domain")
@click.option("--selector", required=True)
@repo_option
@json_option
def dkim_record(domain: str, selector: str, repo: Path, as_json: bool) -> None:
    """Print the DKIM TXT record to publish for DOMAIN and SELECTOR."""
    der = public_key_der(repo, domain, selector)
    if der is None:
        fail(f"no public key for {domain} selector {selector}: run relayops dkim generate")
    name, value = f"{selector}._domainkey.{domain}", dkim_txt(der)
    if as_json:
        emit_json({"ok": True, "name": name, "type": "TXT", "value": value})
    else:
        click.echo(f'{name} TXT "{value}"')


@dkim.command("decrypt", epilog=EXIT_CODES_HELP)
@click.argument("domain")
@click.option("--selector", required=True)
@click.option(
    "--identity",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="age identity file (AGE-SECRET-KEY-...).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PEM private key (created with mode 0600).",
)
@repo_option
def dkim_decrypt(domain: str, selector: str, identity: Path, out: Path, repo: Path) -> None:
    """Decrypt a private key to a 0600 file (the deploy does this in memory)."""
    try:
        pem = decrypt_key(repo, domain, selector, identity)
    except DkimKeyError as exc:
        fail(str(exc))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    click.echo(f"wrote {out}")


dkim.add_command(rotate_command)
