"""Golden test inventory."""

relays = (
    [
        (
            "relay1.relay.example.net",
            {
                "ssh_hostname": "198.18.0.10",
                "relayops_ips": [
                    {
                        "name": "shared-1",
                        "address": "198.18.0.10",
                        "pool": "shared",
                        "ptr": "relay1.relay.example.net",
                    },
                ],
            },
        ),
    ],
    {},
)
