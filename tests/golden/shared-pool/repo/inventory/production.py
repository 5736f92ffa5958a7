"""Golden test inventory."""

relays = (
    [
        (
            "relay1.relay.example.net",
            {
                "ssh_hostname": "192.0.2.10",
                "relayops_ips": [
                    {
                        "name": "shared-1",
                        "address": "192.0.2.10",
                        "pool": "shared",
                        "ptr": "relay1.relay.example.net",
                    },
                ],
            },
        ),
    ],
    {},
)
