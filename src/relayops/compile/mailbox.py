"""The customers' notice mailboxes: one IMAP mailbox per customer on each relay.

Per customer, not per login: notices are about the subscription (its quota is
shared by all its logins), so every login of a customer reads the same
mailbox. The policy daemon sends each notice to the contact address and to
<customer>@MAILBOX_DOMAIN on its own relay; Postfix (virtual_mailbox_domains)
hands that address over LMTP to Dovecot, whose userdb gives it and all the
customer's logins the same home. Declared here once for postfix.py,
dovecot.py and policy.py.
"""

from __future__ import annotations

from relayops.compile.placement import served
from relayops.model import RelayHost, Repo, Status

# Local to each relay, never in DNS. .invalid is reserved (RFC 6761 6.4): nobody
# else can own it and nothing outside resolves it.
MAILBOX_DOMAIN = "mailbox.relayops.invalid"


def mailbox_address(customer_id: str) -> str:
    return f"{customer_id}@{MAILBOX_DOMAIN}"


def mailbox_customers(repo: Repo, host: RelayHost) -> list[str]:
    """Customers with a mailbox on the host: the ones it serves that have a login to read
    it, terminated ones excepted.

    A suspended customer keeps its mailbox (and its logins): the suspension
    notice is in it. A notice to a customer without a mailbox reaches its
    contact address only (Postfix refuses the mailbox recipient alone).
    """
    return sorted(
        customer.id
        for customer, _ in served(repo.customers, host)
        if customer.status is not Status.TERMINATED and customer.users
    )
