"""The lab's relay hosts (`relayops lab up`): the production shape on 198.18.0.0/24.

Addresses follow the lab's topology (src/relayops/lab): relay k at 198.18.0.(10+k)
with extra addresses 198.18.0.(100+10k+j). The lab key is made by `lab up`.
"""

_LAB_KEY = "/var/lib/relayops-lab/ssh/id_ed25519"

relays = (
    [
        (
            "relay1.relay.example.net",
            {
                "ssh_hostname": "198.18.0.11",
                "ssh_user": "root",
                "ssh_key": _LAB_KEY,
                "relayops_ips": [
                    {"name": "eu-1", "address": "198.18.0.11", "pool": "shared-eu",
                     "ptr": "relay1.relay.example.net"},
                    {"name": "dedicated-1", "address": "198.18.0.111", "dedicated": True,
                     "ptr": "o1.relay.example.net"},
                    {"name": "dedicated-2", "address": "198.18.0.112", "dedicated": True,
                     "ptr": "o2.relay.example.net"},
                ],
            },
        ),
        (
            "relay2.relay.example.net",
            {
                "ssh_hostname": "198.18.0.12",
                "ssh_user": "root",
                "ssh_key": _LAB_KEY,
                "relayops_ips": [
                    {"name": "us-1", "address": "198.18.0.12", "pool": "shared-us",
                     "ptr": "relay2.relay.example.net"},
                    {"name": "eu-2", "address": "198.18.0.121", "pool": "shared-eu",
                     "ptr": "o3.relay.example.net"},
                    {"name": "dedicated-3", "address": "198.18.0.122", "dedicated": True,
                     "ptr": "o4.relay.example.net"},
                ],
            },
        ),
    ],
    # The lab's Redis runs on relay1; both relays count quotas there, as the ACL user
    # relayops-policyd (password: secrets/redis/), over TLS verified with the lab CA.
    {
        "relayops_shared_counters":
            "rediss://relayops-policyd@198.18.0.11:6380/0?ca=/etc/relayops/tls/ca.pem",
        # The lab DNS host serves this blocklist (empty until a test lists an IP).
        "relayops_dnsbl_zones": [{"zone": "dnsbl.lab"}],
        # `lab up` records each host's key here: pyinfra checks the lab's host keys against
        # it, strictly (a lab host whose key changed is refused like any other).
        "ssh_known_hosts_file": "/var/lib/relayops-lab/ssh/known_hosts",
        "ssh_strict_host_key_checking": "yes",
        # The lab's own identity decrypts secrets/ (production: RELAYOPS_AGE_IDENTITY).
        "relayops_age_identity": "lab/age-identity.lab-only.txt",
        # The deploy issues the relays' certificates from the lab CA (production: ACME).
        "relayops_tls": "lab-ca",
        # `relayops check` trusts the lab CA (made by the deploy) and asks the lab DNS host.
        "relayops_ca_bundle": "/var/lib/relayops-lab/ca/ca.pem",
        "relayops_check_nameserver": "198.18.0.2",
    },
)
