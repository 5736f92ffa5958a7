"""Output instances: one per sending IP, its address, HELO, port and class transports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from relayops.compile.instances import (
    ClassTransport,
    class_rows,
    class_transports,
    instance_files,
    output_instances,
)
from relayops.compile.templates import Templates
from relayops.loader import load_repo
from relayops.model import Repo

GOLDEN = Path(__file__).parents[1] / "golden"


def golden(case: str) -> Repo:
    repo = load_repo(GOLDEN / case / "repo", today=date(2026, 11, 23)).repo
    assert repo is not None
    return repo


def test_one_instance_per_egress_with_its_address_helo_and_port() -> None:
    repo = golden("throttling")
    host = repo.inventories["production"].hosts[0]
    instances = output_instances(host)
    assert [(i.name, str(i.egress.ip.address), i.egress.ip.ptr, i.port) for i in instances] == [
        ("postfix-ip-dedi-1", "192.0.2.20", "o1.relay.example.net", 10101),
        ("postfix-pool-shared", "192.0.2.10", "relay1.relay.example.net", 10102),
    ]
    first = instances[0]
    assert (first.config_dir, first.queue_dir, first.data_dir) == (
        "/etc/postfix-ip-dedi-1",
        "/var/spool/postfix-ip-dedi-1",
        "/var/lib/postfix-ip-dedi-1",
    )
    assert first.handoff == "relayops-handoff:[127.0.0.1]:10101"
    assert first.listen == "127.0.0.1:10101"


def test_class_limits_become_transport_settings() -> None:
    repo = golden("throttling")
    assert class_transports(repo.throttling) == [
        # a rate delay: one at a time, ten failed cohorts before a pause (postconf(5))
        ClassTransport(
            "isp-gmail", 1, 1, None, 10, None, 19, True, ("gmail.com", "googlemail.com"), 2
        ),
        # one message per connection: no connection caching at all
        ClassTransport("isp-microsoft", 3, 0, 20, 3, "1/concurrency", None, False),
    ]
    assert class_rows(repo.throttling) == [
        ("gmail.com", "isp-gmail:"),
        ("googlemail.com", "isp-gmail:"),
        ("hotmail.com", "isp-microsoft:"),
        ("outlook.com", "isp-microsoft:"),
    ]


def test_each_instance_binds_its_ip_and_reloads_alone() -> None:
    repo = golden("throttling")
    host = repo.inventories["production"].hosts[0]
    files, directories = instance_files(repo, host, Templates(), submission_size_limit=1000)
    by_path = {f.path: f for f in files}
    main = by_path["/etc/postfix-ip-dedi-1/main.cf"].content.decode()
    assert "\nsmtp_bind_address = 192.0.2.20\n" in main
    assert "\nsmtp_helo_name = o1.relay.example.net\n" in main
    assert "\nmessage_size_limit = 1049576\n" in main
    assert {f.reload for f in files} == {"postfix@postfix-ip-dedi-1", "postfix@postfix-pool-shared"}
    assert sorted(d.path for d in directories) == [
        "/etc/postfix-ip-dedi-1",
        "/etc/postfix-pool-shared",
        "/var/lib/postfix-ip-dedi-1",
        "/var/lib/postfix-pool-shared",
        "/var/spool/postfix-ip-dedi-1",
        "/var/spool/postfix-pool-shared",
    ]
