"""Dovecot: SASL for Postfix, IMAP on 993 only, and the passwd-file of active logins."""

from __future__ import annotations

from relayops.compile.files import Daemon, Directory, Mailbox, ManagedFile
from relayops.compile.placement import served
from relayops.compile.templates import Templates
from relayops.hostlayout import SASL_SOCKET as AUTH_SOCKET
from relayops.hostlayout import TLS_CERT, TLS_KEY
from relayops.model import RelayHost, Repo, Status

PASSWD_FILE = "/etc/dovecot/relayops-users"
MAIL_ROOT = "/var/vmail"
MAIL_USER = "vmail"  # system user the deploy creates; owns every mailbox


def passwd_rows(repo: Repo, host: RelayHost) -> list[tuple[str, str]]:
    """(login, hash) of the active customers the host serves: the others cannot log in."""
    return sorted(
        (user.login, user.password)
        for customer, _ in served(repo.customers, host)
        if customer.sends
        for user in customer.users
    )


def mailbox_path(login: str) -> str:
    """Where Dovecot keeps a login's mail: the userdb home of dovecot.conf (mail_root/%u)."""
    return f"{MAIL_ROOT}/{login}"


def mailboxes(repo: Repo, host: RelayHost) -> list[Mailbox]:
    """The mailboxes the host may hold: every login of a customer it serves, unless terminated.

    A suspended customer keeps its mail (it may come back); a terminated one loses it.
    """
    return sorted(
        (
            Mailbox(mailbox_path(user.login), user.login, customer.id)
            for customer, _ in served(repo.customers, host)
            if customer.status is not Status.TERMINATED
            for user in customer.users
        ),
        key=lambda m: m.path,
    )


def dovecot_files(
    repo: Repo, host: RelayHost, templates: Templates
) -> tuple[list[ManagedFile], list[Directory]]:
    conf = templates.render(
        "/etc/dovecot/dovecot.conf",
        hostname=host.fqdn,
        tls_cert=TLS_CERT,
        tls_key=TLS_KEY,
        auth_socket=AUTH_SOCKET,
        passwd_file=PASSWD_FILE,
        mail_root=MAIL_ROOT,
        mail_user=MAIL_USER,
    )
    files = [
        ManagedFile("/etc/dovecot/dovecot.conf", conf, 0o644, "root", "root", Daemon.DOVECOT),
        # Hashes only, but still not world-readable. No reload: passwd-file is re-read
        # when its mtime changes.
        ManagedFile(
            PASSWD_FILE,
            templates.render(PASSWD_FILE, rows=passwd_rows(repo, host)),
            0o640,
            "root",
            "dovecot",
            None,
        ),
    ]
    return files, [Directory(MAIL_ROOT, 0o750, MAIL_USER, MAIL_USER)]
