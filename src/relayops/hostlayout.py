"""The relay host's layout: every socket, address and path two packages share, once.

The compiler writes them into Postfix, OpenDKIM, Dovecot and the daemon's arguments;
the deploy creates the directories, installs the daemon and places the certificate.
A change here moves both sides together. (The daemon's own `--store` default repeats
SQLITE_STORE because relayops.policyd imports nothing outside itself; a test keeps
the two equal.)
"""

from __future__ import annotations

# The policy daemon, asked by Postfix at RCPT and END-OF-DATA.
POLICY_ADDRESS = "127.0.0.1"
POLICY_PORT = 10040
POLICY_LISTEN = f"{POLICY_ADDRESS}:{POLICY_PORT}"  # relayops policyd --listen
POLICY_SERVICE = f"inet:{POLICY_LISTEN}"  # Postfix check_policy_service
# The daemon's message checks (From:, campaigns) as a milter, before OpenDKIM (docs/milter.md).
MESSAGE_MILTER_LISTEN = f"{POLICY_ADDRESS}:10041"  # relayops policyd --milter
MESSAGE_MILTER_POSTFIX = f"inet:{MESSAGE_MILTER_LISTEN}"  # smtpd_milters, first
# Notices leave through the local Postfix: loopback is in mynetworks.
NOTIFY_SMTP = "127.0.0.1:25"

# OpenDKIM's milter: the same socket in each program's own notation.
DKIM_MILTER_ADDRESS = "127.0.0.1"
DKIM_MILTER_PORT = 8891
DKIM_MILTER_OPENDKIM = f"inet:{DKIM_MILTER_PORT}@{DKIM_MILTER_ADDRESS}"  # opendkim.conf Socket
DKIM_MILTER_POSTFIX = f"inet:{DKIM_MILTER_ADDRESS}:{DKIM_MILTER_PORT}"  # smtpd_milters

# Dovecot's SASL socket for Postfix, inside Postfix's queue directory (its chroot).
POSTFIX_QUEUE_DIR = "/var/spool/postfix"
SASL_PATH = "private/auth"  # smtpd_sasl_path, relative to the queue directory
SASL_SOCKET = f"{POSTFIX_QUEUE_DIR}/{SASL_PATH}"  # dovecot unix_listener
# Dovecot's LMTP listener, where Postfix delivers the customers' notice mailboxes.
LMTP_PATH = "private/dovecot-lmtp"  # relative to the queue directory (main.cf)
LMTP_SOCKET = f"{POSTFIX_QUEUE_DIR}/{LMTP_PATH}"  # dovecot service lmtp
# The customers' mailboxes: MAIL_ROOT/<customer id>, one per customer (compile/mailbox.py).
MAIL_ROOT = "/var/vmail"

# relayops' own places.
CONFIG_DIR = "/etc/relayops"
RULES_PATH = f"{CONFIG_DIR}/policy.json"  # relayops policyd --rules
# The X-Relayops-Trace stamp key: the daemon signs with it, the feedback ingester verifies.
TRACE_KEY = f"{CONFIG_DIR}/trace.key"
TLS_DIR = f"{CONFIG_DIR}/tls"
TLS_CERT = f"{TLS_DIR}/fullchain.pem"  # ACME's (production) or the lab CA's
TLS_KEY = f"{TLS_DIR}/privkey.pem"
TLS_CA = f"{TLS_DIR}/ca.pem"  # the CA alone: ?ca= of a rediss:// store URL
STATE_DIR = "/var/lib/relayops"  # the daemon account's home
SQLITE_STORE = f"sqlite:{STATE_DIR}/policyd.sqlite"  # one host's counters
# The log follower's runtime state (positions, unreadable lines): never a deployed file.
MAILLOG_STATE_DIR = f"{STATE_DIR}/maillog"
# The Redis ACL user's password, off the command line (policyd --store-password-file).
STORE_PASSWORD_FILE = "/etc/relayops/redis-password"
OPT_DIR = "/opt/relayops"
VENV = f"{OPT_DIR}/venv"  # the daemon's code
WHEEL_DIR = f"{OPT_DIR}/wheels"
MARKER = f"{OPT_DIR}/installed-wheels"  # digest of the installed wheel set
