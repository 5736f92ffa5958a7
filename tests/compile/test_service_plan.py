"""What `plan` says a change does to each service: start, reload, remove."""

from __future__ import annotations

from relayops.compile.files import Daemon, HostConfig, ManagedFile
from relayops.compile.service_plan import ServiceChange, service_changes


def _config(*files: tuple[str, bytes, str]) -> HostConfig:
    return HostConfig(
        host="relay1",
        fqdn="relay1.example",
        files=tuple(ManagedFile(p, c, 0o644, "root", "root", r) for p, c, r in files),
        secrets=(),
        directories=(),
    )


MAIN = ("/etc/postfix/main.cf", b"a", Daemon.POSTFIX)
DEDI = ("/etc/postfix-ip-d1/main.cf", b"d", "postfix@postfix-ip-d1")
POOL = ("/etc/postfix-pool-eu/main.cf", b"p", "postfix@postfix-pool-eu")


def test_a_new_ip_starts_its_instance_and_a_gone_one_is_removed() -> None:
    before = _config(MAIN, POOL)
    after = _config(("/etc/postfix/main.cf", b"b", Daemon.POSTFIX), DEDI)
    assert service_changes(before, after) == [
        ServiceChange("postfix", "reload"),
        ServiceChange("postfix@postfix-ip-d1", "start"),
        ServiceChange("postfix@postfix-pool-eu", "remove"),
    ]


def test_unchanged_services_are_left_out_and_a_new_host_starts_all() -> None:
    assert service_changes(_config(MAIN, POOL), _config(MAIN, POOL)) == []
    assert [c.action for c in service_changes(None, _config(MAIN))] == ["start"]
