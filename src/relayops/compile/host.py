"""Assemble one HostConfig per relay host: the compiler's entry point."""

from __future__ import annotations

from relayops.compile.backoff import backoff_files
from relayops.compile.dovecot import dovecot_files, mailboxes
from relayops.compile.files import Directory, HostConfig, ManagedFile, SecretFile, Tenant
from relayops.compile.instances import instance_files
from relayops.compile.maillog import maillog_files
from relayops.compile.opendkim import opendkim_files
from relayops.compile.placement import served
from relayops.compile.policy import policy_files, policy_secrets, store_arguments, trace_key_secret
from relayops.compile.postfix import message_size_limit, postfix_files
from relayops.compile.templates import Templates
from relayops.model import Inventory, RelayHost, Repo


class CompileError(Exception):
    """The repository is valid but cannot be compiled for this inventory; the message says why."""


def compile_host(
    repo: Repo, inventory: Inventory, host: RelayHost, templates: Templates
) -> HostConfig:
    files: list[ManagedFile] = []
    secrets: list[SecretFile] = []
    directories: list[Directory] = []
    try:
        store = store_arguments(inventory)
    except ValueError as exc:
        raise CompileError(f"{inventory.path}: {exc}") from None
    files += postfix_files(repo, host, templates, store=store)
    out_files, out_dirs = instance_files(
        repo, host, templates, submission_size_limit=message_size_limit(repo)
    )
    files += out_files
    directories += out_dirs
    files += backoff_files(repo, host, templates)
    dkim_files, dkim_secrets, dkim_dirs = opendkim_files(repo, host, templates)
    files += dkim_files
    secrets += dkim_secrets
    directories += dkim_dirs
    mail_files, mail_dirs = dovecot_files(repo, host, templates)
    files += mail_files
    directories += mail_dirs
    try:
        files += policy_files(repo, inventory, host, templates)
        files += maillog_files(inventory, templates)
        secrets += policy_secrets(inventory)
    except ValueError as exc:
        raise CompileError(f"{inventory.path}: {exc}") from None
    secrets.append(trace_key_secret())
    paths = [f.path for f in files] + [s.path for s in secrets]
    if len(paths) != len(set(paths)):
        raise CompileError(f"{host.name}: two entries for one path; this is a compiler bug")
    return HostConfig(
        host=host.name,
        fqdn=host.fqdn,
        files=tuple(sorted(files, key=lambda f: f.path)),
        secrets=tuple(sorted(secrets, key=lambda s: s.path)),
        directories=tuple(sorted(directories, key=lambda d: d.path)),
        mailboxes=tuple(mailboxes(repo, host)),
        tenants=tuple(
            Tenant(customer.id, tuple(sorted(d.name for d in customer.domains)))
            for customer, _ in served(repo.customers, host)
        ),
    )


def compile_inventory(
    repo: Repo, inventory: Inventory, *, templates: Templates | None = None
) -> dict[str, HostConfig]:
    """Every host of `inventory`, by host name: a pure function of the repository."""
    templates = templates or Templates()
    return {host.name: compile_host(repo, inventory, host, templates) for host in inventory.hosts}
