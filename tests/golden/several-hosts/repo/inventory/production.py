"""Golden test inventory."""

relays = (
    [
        (
            "relay1.relay.example.net",
            {
                "ssh_hostname": "192.0.2.10",
                "relayops_ips": [
                    {
                        "name": "eu-1",
                        "address": "192.0.2.10",
                        "pool": "eu",
                        "ptr": "relay1.relay.example.net",
                    },
                    {
                        "name": "dedi-1",
                        "address": "192.0.2.20",
                        "dedicated": True,
                        "ptr": "o1.relay.example.net",
                    },
                ],
            },
        ),
        (
            "relay2.relay.example.net",
            {
                "ssh_hostname": "192.0.2.11",
                "relayops_ips": [
                    {
                        "name": "eu-2",
                        "address": "192.0.2.11",
                        "pool": "eu",
                        "ptr": "relay2.relay.example.net",
                    },
                    {
                        "name": "us-1",
                        "address": "192.0.2.12",
                        "pool": "us",
                        "ptr": "o2.relay.example.net",
                    },
                ],
            },
        ),
    ],
    {
        "relayops_shared_counters": "rediss+sentinel://relayops-policyd@192.0.2.51,192.0.2.52,192.0.2.53/relayops/0?ca=/etc/relayops/tls/ca.pem"
    },
)
