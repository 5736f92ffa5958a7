"""`relayops render`, `relayops plan` and `relayops dkim …` (registered in relayops.cli)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from relayops.commands.options import json_option, repo_option
from relayops.commands.repo import print_findings
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
from relayops.compile.report import plan_json, plan_markdown
from relayops.compile.templates import DEFAULT_TEMPLATE_DIR, TemplateError, Templates
from relayops.compile.toolcheck import ToolMissing, check_host
from relayops.model import Repo

_inventory_option = click.option(
    "--inventory",
    "inventory_name",
    default="production",
    show_default=True,
    help="Inventory under inventory/: production or lab.",
)


def _fail(message: str) -> NoReturn:
    click.echo(f"relayops: {message}", err=True)
    sys.exit(2)


def _load(root: Path) -> Repo:
    result = load_frozen(root)
    if result.repo is None:
        print_findings(result.findings)
        click.echo(
            f"{root}: invalid repository; fix the errors above (relayops validate)", err=True
        )
        sys.exit(2)
    return result.repo


def _compile(repo: Repo, inventory_name: str, templates: Templates) -> dict[str, HostConfig]:
    inventory = repo.inventories.get(inventory_name)
    if inventory is None:
        _fail(f"no inventory {inventory_name!r}; known: {', '.join(sorted(repo.inventories))}")
    try:
        return compile_inventory(repo, inventory, templates=templates)
    except (CompileError, TemplateError) as exc:
        _fail(f"cannot compile inventory {inventory_name}: {exc}")


@click.command()
@repo_option
@_inventory_option
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
    inventory_name: str,
    hosts: tuple[str, ...],
    all_hosts: bool,
    out: Path,
    check: bool,
    as_json: bool,
) -> None:
    """Write the files of each relay host, exactly as the deploy would upload them."""
    if hosts and all_hosts:
        raise click.UsageError("give --host NAME or --all, not both")
    configs = _compile(_load(repo), inventory_name, Templates())
    if hosts:
        unknown = sorted(set(hosts) - set(configs))
        if unknown:
            _fail(f"unknown host(s) {', '.join(unknown)}; hosts: {', '.join(sorted(configs))}")
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
                    _fail(str(exc))
            item["checks"] = [{"tool": r.tool, "ok": r.ok, "output": r.output} for r in results]
            failed = failed or not all(r.ok for r in results)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
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
    sys.exit(1 if failed else 0)


def _keys(root: Path) -> Callable[[str, str], bytes | None]:
    return lambda domain, selector: public_key_der(root, domain, selector)


@click.command()
@repo_option
@click.option("--base", default="HEAD", show_default=True, help="Git ref to compare with.")
@_inventory_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
def plan(repo: Path, base: str, inventory_name: str, fmt: str) -> None:
    """Show what the working tree changes against BASE: customers, DNS, host files."""
    head = _load(repo)
    templates = Templates()
    head_hosts = _compile(head, inventory_name, templates)
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
            elif inventory_name not in base_repo.inventories:
                notes.append(f"`{base}` has no inventory {inventory_name}.")
            else:
                base_hosts = _compile_base(base_repo, base_root, inventory_name, templates, notes)
            the_plan = make_plan(
                base_ref=base,
                inventory_name=inventory_name,
                base=base_repo,
                head=head,
                base_hosts=base_hosts,
                head_hosts=head_hosts,
                head_keys=_keys(repo),
                base_keys=_keys(base_root),
                notes=notes,
            )
    except GitRefError as exc:
        _fail(str(exc))
    click.echo(plan_json(the_plan) if fmt == "json" else plan_markdown(the_plan), nl=False)


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


@click.group()
def dkim() -> None:
    """DKIM keys: generated here, stored age-encrypted under secrets/dkim/."""


@dkim.command("generate")
@click.argument("domains", nargs=-1)
@click.option("--selector", help="DKIM selector (as in the customer's domains[].dkim).")
@click.option(
    "--missing",
    is_flag=True,
    help="Generate every key the customers' domains need and the repo lacks.",
)
@repo_option
def dkim_generate(
    domains: tuple[str, ...], selector: str | None, missing: bool, repo: Path
) -> None:
    """Make an RSA-2048 key: private part encrypted to secrets/recipients.txt, public beside."""
    pairs: list[tuple[str, str]] = []
    if missing:
        loaded = _load(repo)
        pairs = sorted(
            (d.name, d.dkim.selector)
            for c in loaded.customers.values()
            for d in c.domains
            if not key_files(repo, d.name, d.dkim.selector).private_age.exists()
        )
    elif not domains or selector is None:
        raise click.UsageError("give DOMAIN... --selector S, or --missing")
    else:
        pairs = [(d, selector) for d in domains]
    try:
        for domain, sel in pairs:
            files = generate_key(repo, domain, sel)
            click.echo(f"{domain} {sel}: {files.private_age} (encrypted), {files.public_pem}")
    except DkimKeyError as exc:
        _fail(str(exc))
    if not pairs:
        click.echo("no key missing")


@dkim.command("record")
@click.argument("domain")
@click.option("--selector", required=True)
@repo_option
def dkim_record(domain: str, selector: str, repo: Path) -> None:
    """Print the DKIM TXT record to publish for DOMAIN and SELECTOR."""
    der = public_key_der(repo, domain, selector)
    if der is None:
        _fail(f"no public key for {domain} selector {selector}: run relayops dkim generate")
    click.echo(f'{selector}._domainkey.{domain} TXT "{dkim_txt(der)}"')


@dkim.command("decrypt")
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
        _fail(str(exc))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    click.echo(f"wrote {out}")
