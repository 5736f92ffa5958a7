"""OpenDKIM: one key per (sender domain, selector) of the active customers a host serves."""

from __future__ import annotations

from relayops.compile.files import Daemon, Directory, ManagedFile, SecretFile
from relayops.compile.placement import served
from relayops.compile.templates import Templates
from relayops.hostlayout import DKIM_MILTER_OPENDKIM as SOCKET
from relayops.model import RelayHost, Repo
from relayops.model.secrets import encrypted_key_source

SENDER_MACRO = "{mail_addr}"  # the envelope sender; in Postfix's default milter_mail_macros
KEY_DIR = "/etc/opendkim/keys"
KEY_TABLE = "/etc/opendkim/KeyTable"
SIGNING_TABLE = "/etc/opendkim/SigningTable"
TRUSTED_HOSTS = "/etc/opendkim/TrustedHosts"


def key_path(domain: str, selector: str) -> str:
    return f"{KEY_DIR}/{domain}/{selector}.private"


def signing_keys(repo: Repo, host: RelayHost) -> list[tuple[str, str]]:
    """(domain, selector) pairs this host signs for, sorted: its customers' domains and the
    service domain (notices from `notify_from`, and bounces, whose From: is
    MAILER-DAEMON@<service domain> through `myorigin`)."""
    service = repo.service
    customers = {
        (d.name, d.dkim.selector)
        for customer, _ in served(repo.customers, host)
        if customer.sends
        for d in customer.domains
    }
    return sorted(customers | {(service.domain, service.dkim.selector)})


def opendkim_files(
    repo: Repo, host: RelayHost, templates: Templates
) -> tuple[list[ManagedFile], list[SecretFile], list[Directory]]:
    keys = signing_keys(repo, host)
    key_rows = [
        (f"{sel}._domainkey.{dom}", f"{dom}:{sel}:{key_path(dom, sel)}") for dom, sel in keys
    ]
    signing_rows = [(f"*@{dom}", f"{sel}._domainkey.{dom}") for dom, sel in keys]
    trusted = ["127.0.0.1", "::1", "localhost", host.fqdn]

    def conf(path: str, content: bytes) -> ManagedFile:
        return ManagedFile(path, content, 0o644, "root", "root", Daemon.OPENDKIM)

    files = [
        conf(
            "/etc/opendkim.conf",
            templates.render(
                "/etc/opendkim.conf",
                socket=SOCKET,
                sender_macro=SENDER_MACRO,
                key_table=KEY_TABLE,
                signing_table=SIGNING_TABLE,
                trusted_hosts=TRUSTED_HOSTS,
            ),
        ),
        # Debian's init script reads it (run dir, user, pid file; SOCKET only if
        # opendkim.conf had no Socket): keep both in agreement.
        conf("/etc/default/opendkim", templates.render("/etc/default/opendkim", socket=SOCKET)),
        conf(KEY_TABLE, templates.render(KEY_TABLE, rows=key_rows)),
        conf(SIGNING_TABLE, templates.render(SIGNING_TABLE, rows=signing_rows)),
        conf(TRUSTED_HOSTS, templates.render(TRUSTED_HOSTS, hosts=trusted)),
    ]
    secrets = [
        SecretFile(
            key_path(dom, sel),
            encrypted_key_source(dom, sel),
            0o600,
            "opendkim",
            "opendkim",
            Daemon.OPENDKIM,
        )
        for dom, sel in keys
    ]
    directories = [Directory(KEY_DIR, 0o750, "opendkim", "opendkim")] + [
        Directory(f"{KEY_DIR}/{dom}", 0o750, "opendkim", "opendkim")
        for dom in sorted({dom for dom, _ in keys})
    ]
    return files, secrets, directories
