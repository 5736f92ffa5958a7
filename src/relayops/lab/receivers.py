"""How the destination host answers, like the receiving ISPs do: pure Postfix table texts.

The recipient chooses the behaviour, through ordinary SMTP (no mock in the path):

* `unknown-*@…`: `550 5.1.1 <rcpt>: Recipient address rejected: User unknown`
* `full-*@…`: `452 4.2.2 <rcpt>: Recipient address rejected: Mailbox full`
* `overquota-*@…`: `552 5.2.2 <rcpt>: Recipient address rejected: Mailbox over quota`
* `*@blocked.lab`: `550 5.7.1 Service unavailable, Client host [IP] blocked using
  reputation.lab; low reputation of the sending IP`
* a domain switched on with `Sink.defer_volume` (e.g. yahoo.com): `421 4.7.0 [TSS04]
  Messages from IP temporarily deferred due to unexpected volume or user complaints`
* `slow-*@…`: accepted, but the receiver waits a second at DATA (restriction class
  `sleep`), like a busy ISP: deliveries overlap, so a concurrency limit is what bounds them
* `late-*@…`: accepted (250), then a DSN to the Return-Path's MX:
  `5.1.1 The email account that you tried to reach does not exist`

A late bounce cannot use the error(8) transport: smtpd sees a recipient routed to
`error:` and refuses it at RCPT already. A pipe(8) transport whose command exits
EX_NOUSER (67) bounces after the 250, as a mailbox server behind a gateway does.

Replies that must carry the client's IP and no Postfix prefix come from
`reject_rbl_client` against lab DNS zones that list every address (a wildcard),
with the text from `rbl_reply_maps`: an access table can only answer
`<rcpt>: Recipient address rejected: …`, which is not how those ISPs word it.
"""

from __future__ import annotations

import re

REPUTATION_ZONE = "reputation.lab"  # `*.reputation.lab A 127.0.0.2`: every IP is "listed"
VOLUME_ZONE = "volume.lab"
REPUTATION_REASON = "low reputation of the sending IP"  # the zone's TXT, Postfix's $rbl_reason
BLOCKED_DOMAIN = "blocked.lab"

# The exact replies; `{rcpt}` is the recipient, `{ip}` the relay's sending address.
USER_UNKNOWN = "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"
MAILBOX_FULL = "452 4.2.2 <{rcpt}>: Recipient address rejected: Mailbox full"
OVER_QUOTA = "552 5.2.2 <{rcpt}>: Recipient address rejected: Mailbox over quota"
REPUTATION_BLOCK = (
    "550 5.7.1 Service unavailable, Client host [{ip}] blocked using "
    f"{REPUTATION_ZONE}; {REPUTATION_REASON}"
)
VOLUME_DEFERRAL = (
    "421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected volume "
    "or user complaints"
)
LATE_STATUS = "5.1.1"
LATE_REASON = "The email account that you tried to reach does not exist"  # Gmail's wording
# The pipe command prints it: Postfix takes a leading enhanced status code as the DSN status.
LATE_BOUNCE = f"{LATE_STATUS} {LATE_REASON}"

# Local-part prefixes → the access table's answer (Postfix prepends `<rcpt>: Recipient
# address rejected: `).
_PREFIXES = {
    "unknown": "550 5.1.1 User unknown",
    "full": "452 4.2.2 Mailbox full",
    "overquota": "552 5.2.2 Mailbox over quota",
}
LATE_PREFIX = "late"
SLOW_PREFIX = "slow"
SLOW_SECONDS = 1  # Postfix's `sleep` takes whole seconds

# Restriction classes the tables name.
REPUTATION_CLASS = "relayops_reputation_block"
VOLUME_CLASS = "relayops_volume_deferral"
SLOW_CLASS = "relayops_slow_receiver"

ETC = "/etc/postfix"
RECIPIENT_TABLE = f"{ETC}/receivers.regexp"
DEFERRAL_TABLE = f"{ETC}/deferrals"  # hash: rewritten + postmap by a test, no restart
RBL_REPLIES = f"{ETC}/rbl_replies"
TRANSPORT_TABLE = f"{ETC}/late.regexp"
MAILBOX_DOMAINS = f"{ETC}/mailbox_domains.regexp"
SLOW_TABLE = f"{ETC}/slow.regexp"
HEADER = "# managed by relayops lab (src/relayops/lab/receivers.py)\n"


def reply(template: str, *, rcpt: str = "", ip: str = "") -> str:
    """One of the reply templates above filled in: the exact text a relay's log shows."""
    return template.format(rcpt=rcpt, ip=ip)


def recipient_table() -> str:
    """regexp: table for `check_recipient_access`: refusals by local part, blocked.lab."""
    lines = [HEADER]
    for prefix, answer in _PREFIXES.items():
        lines.append(f"/^{prefix}-[^@]*@/ {answer}\n")
    lines.append(f"/@{re.escape(BLOCKED_DOMAIN)}$/ {REPUTATION_CLASS}\n")
    return "".join(lines)


def slow_table() -> str:
    """regexp: `check_recipient_access` at DATA (the message's one recipient): `slow-*`
    waits there, after smtpd logged `client=` and before the header is read."""
    return HEADER + f"/^{SLOW_PREFIX}-[^@]*@/ {SLOW_CLASS}\n"


def deferral_table(domains: tuple[str, ...]) -> str:
    """hash: table for the second `check_recipient_access`: each domain deferred (TSS04)."""
    return HEADER + "".join(f"{d} {VOLUME_CLASS}\n" for d in sorted({x.lower() for x in domains}))


def rbl_replies() -> str:
    """texthash: `rbl_reply_maps` (Postfix expands $client_address, $rbl_domain, $rbl_reason)."""
    reputation = REPUTATION_BLOCK.replace("{ip}", "$client_address")
    volume = VOLUME_DEFERRAL.replace("{ip}", "$client_address")
    return HEADER + f"{REPUTATION_ZONE} {reputation}\n{VOLUME_ZONE} {volume}\n"


LATE_TRANSPORT = "relayops-late-bounce"
LATE_COMMAND = f"/usr/local/sbin/{LATE_TRANSPORT}"
EX_NOUSER = 67  # sysexits.h: pipe(8) turns it into a 5.1.1 bounce


def transport_table() -> str:
    """regexp: `transport_maps`: `late-*` accepted, then bounced by the pipe transport."""
    return HEADER + f"/^{LATE_PREFIX}-[^@]*@/ {LATE_TRANSPORT}:\n"


def late_command() -> str:
    """The pipe(8) command: its output becomes the DSN's diagnostic, its exit the status."""
    return (
        "#!/bin/sh\n"
        "# managed by relayops lab (src/relayops/lab/receivers.py): a late bounce\n"
        f'echo "{LATE_BOUNCE}"\n'
        f"exit {EX_NOUSER}\n"
    )


def master_cf_lines() -> str:
    """The pipe service appended to the sink's master.cf."""
    return f"{LATE_TRANSPORT} unix - n n - - pipe\n  flags=q user=nobody argv={LATE_COMMAND}\n"


def mailbox_domains_table(service_domain: str) -> str:
    """regexp: every domain is a mailbox domain except the relay service's: its mail (DSNs
    of late bounces, complaint reports) leaves for the MX the lab DNS names."""
    pattern = re.escape(service_domain.lower())
    return HEADER + f"!/(^|\\.){pattern}$/ ok\n"


def main_cf_lines() -> str:
    """The main.cf settings that wire the tables in (appended to the sink's main.cf)."""
    return (
        f"smtpd_restriction_classes = {REPUTATION_CLASS}, {VOLUME_CLASS}, {SLOW_CLASS}\n"
        f"{REPUTATION_CLASS} = reject_rbl_client {REPUTATION_ZONE}\n"
        f"{SLOW_CLASS} = sleep {SLOW_SECONDS}\n"
        f"{VOLUME_CLASS} = reject_rbl_client {VOLUME_ZONE}\n"
        f"smtpd_recipient_restrictions = check_recipient_access regexp:{RECIPIENT_TABLE},"
        f" check_recipient_access hash:{DEFERRAL_TABLE}, permit\n"
        f"smtpd_data_restrictions = check_recipient_access regexp:{SLOW_TABLE}, permit\n"
        f"rbl_reply_maps = texthash:{RBL_REPLIES}\n"
        f"transport_maps = regexp:{TRANSPORT_TABLE}\n"
        # The lab sends nothing over slow links: bounce at once, retry deferred mail soon.
        "smtpd_error_sleep_time = 0s\n"
    )


def dns_records() -> list[tuple[str, str, str]]:
    """(absolute name, type, value) the lab DNS serves for the sink's reputation lists."""
    return [
        (f"*.{REPUTATION_ZONE}.", "A", "127.0.0.2"),
        (f"*.{REPUTATION_ZONE}.", "TXT", REPUTATION_REASON),
        (f"*.{VOLUME_ZONE}.", "A", "127.0.0.2"),
    ]
