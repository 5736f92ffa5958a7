"""Production relay hosts (pyinfra inventory).

Each relay's `relayops_ips` lists its sending IPs by name: customers refer to
these names (`placement.pool` / `placement.dedicated_ip`), so the lab inventory
can give the same names other addresses. Documentation addresses (RFC 5737).
"""

relays = (
    [
        (
            "relay1.relay.example.net",
            {
                "ssh_hostname": "203.0.113.11",
                "relayops_ips": [
                    {"name": "eu-1", "address": "203.0.113.11", "pool": "shared-eu",
                     "ptr": "relay1.relay.example.net"},
                    {"name": "dedicated-1", "address": "203.0.113.111", "dedicated": True,
                     "ptr": "o1.relay.example.net"},
                    {"name": "dedicated-2", "address": "203.0.113.112", "dedicated": True,
                     "ptr": "o2.relay.example.net"},
                ],
            },
        ),
        (
            "relay2.relay.example.net",
            {
                "ssh_hostname": "203.0.113.12",
                "relayops_ips": [
                    {"name": "us-1", "address": "203.0.113.12", "pool": "shared-us",
                     "ptr": "relay2.relay.example.net"},
                    {"name": "eu-2", "address": "203.0.113.121", "pool": "shared-eu",
                     "ptr": "o3.relay.example.net"},
                    {"name": "dedicated-3", "address": "203.0.113.122", "dedicated": True,
                     "ptr": "o4.relay.example.net"},
                ],
            },
        ),
    ],
    # Both relays count quotas in one Redis, so a customer's day is shared exactly: a
    # primary and a replica behind three sentinels (docs/policyd.md, "Redis in production"),
    # as the ACL user relayops-policyd (password: secrets/redis/), TLS with the service CA.
    {
        # The deploy logs in as an unprivileged account with the CI's key (~/.ssh/id_ed25519,
        # written by scripts/ci-secrets) and becomes root through sudo (NOPASSWD for this
        # account only). Host keys are pinned in production.known_hosts beside this file.
        "ssh_user": "relayops-deploy",
        "_sudo": True,
        "relayops_shared_counters":
            "rediss+sentinel://relayops-policyd@192.0.2.51:26379,192.0.2.52:26379,"
            "192.0.2.53:26379/relayops/0?ca=/etc/relayops/tls/ca.pem",
        # `relayops check` looks every relay IP and sender domain up in these (docs/checks.md).
        "relayops_dnsbl_zones": [
            {"zone": "zen.spamhaus.org", "refusal_codes": ["127.255.255.252", "127.255.255.254", "127.255.255.255"]},
            {"zone": "bl.spamcop.net"},
            {"zone": "b.barracudacentral.org"},
            {"zone": "dnsbl-1.uceprotect.net"},
            {"zone": "dbl.spamhaus.org", "kind": "domain", "refusal_codes": ["127.255.255.252", "127.255.255.254", "127.255.255.255"]},
        ],
    },
)
