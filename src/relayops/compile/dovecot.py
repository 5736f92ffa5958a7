"""Dovecot: SASL for Postfix, IMAP on 993 only, LMTP for notices, and the passwd-files.

One mailbox per customer (see mailbox.py): every login of a customer has the
same home, /var/vmail/<customer>, and reads the same Maildir over IMAP; Postfix
delivers <customer>@MAILBOX_DOMAIN there over LMTP (the userdb has that
address too).
"""

from __future__ import annotations

from relayops.compile.files import Daemon, Directory, Mailbox, ManagedFile
from relayops.compile.mailbox import mailbox_address, mailbox_customers
from relayops.compile.placement import served
from relayops.compile.templates import Templates
from relayops.hostlayout import LMTP_SOCKET, MAIL_ROOT, TLS_CERT, TLS_KEY
from relayops.hostlayout import SASL_SOCKET as AUTH_SOCKET
from relayops.model import RelayHost, Repo, Status

PASSWD_FILE = "/etc/dovecot/relayops-users"
MAIL_USER = "vmail"  # system user the deploy creates; owns every mailbox
USERDB_FILE = "/etc/dovecot/relayops-mailboxes"


def passwd_rows(repo: Repo, host: RelayHost) -> list[tuple[str, str]]:
    """(login, hash) of the customers the host serves, except terminated ones.

    A suspended customer's logins still authenticate: the policy daemon then
    refuses each message at MAIL FROM with the suspension's reason (a 535 would
    say nothing), and the logins can read the suspension notice over IMAP.
    """
    return sorted(
        (user.login, user.password)
        for customer, _ in served(repo.customers, host)
        if customer.status is not Status.TERMINATED
        for user in customer.users
    )


def userdb_rows(repo: Repo, host: RelayHost) -> list[tuple[str, str]]:
    """(user, home): every login and the customer's mailbox address share one home."""
    users = {customer.id: customer.users for customer, _ in served(repo.customers, host)}
    rows: list[tuple[str, str]] = []
    for cid in mailbox_customers(repo, host):
        home = mailbox_path(cid)
        rows.append((mailbox_address(cid), home))
        rows.extend((user.login, home) for user in users[cid])
    return sorted(rows)


def mailbox_path(customer_id: str) -> str:
    """Where Dovecot keeps a customer's mail: the userdb home of all its logins."""
    return f"{MAIL_ROOT}/{customer_id}"


def mailboxes(repo: Repo, host: RelayHost) -> list[Mailbox]:
    """The mailboxes the host may hold: one per customer it serves with a login to read it,
    unless terminated (mailbox.py). A suspended customer keeps its mail (the suspension
    notice is in it, and it may come back); a terminated one loses it."""
    return [
        Mailbox(mailbox_path(cid), mailbox_address(cid), cid)
        for cid in mailbox_customers(repo, host)
    ]


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
        userdb_file=USERDB_FILE,
        lmtp_socket=LMTP_SOCKET,
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
        ManagedFile(
            USERDB_FILE,
            templates.render(USERDB_FILE, rows=userdb_rows(repo, host)),
            0o640,
            "root",
            "dovecot",
            None,
        ),
    ]
    return files, [Directory(MAIL_ROOT, 0o750, MAIL_USER, MAIL_USER)]
