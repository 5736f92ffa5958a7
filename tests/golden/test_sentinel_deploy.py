"""What the deploy writes on the relays of a ``rediss+sentinel://`` counters URL.

Three relays: relay1 the initial primary, relay2 and relay3 its replicas, a sentinel on
each. The expected files sit in sentinel-deploy/ (`--update-golden` rewrites them);
every secret there is a test value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relayops.deploy import redis_conf as rc
from relayops.deploy.counters import REDIS_DROPIN
from relayops.deploy.errors import DeployError
from relayops.deploy.hostplan import START_ORDER, host_plan
from relayops.deploy.sentinel import (
    SENTINEL_CONF,
    SENTINEL_PATHS,
    sentinel_files,
    sentinel_placement,
)
from relayops.deploy.state import Kind, PathState, file_changes
from relayops.labca import Pem
from relayops.model import Inventory, RelayHost, RelayIp

HERE = Path(__file__).resolve().parent / "sentinel-deploy"
PASSWORDS = rc.RedisPasswords(policyd="pd-test", replica="rep-test", sentinel="sen-test")
CERT = Pem(cert=b"-----CERT-----\n", key=b"-----KEY-----\n")
URL = (
    "rediss+sentinel://relayops-policyd@198.18.1.11:26379,198.18.1.12:26379,"
    "198.18.1.13:26379/relayops/0?ca=/etc/relayops/tls/ca.pem"
)


def _inventory(url: str | None = URL, relays: int = 3) -> Inventory:
    hosts = [
        RelayHost(
            name=f"relay{k}.relay.example.net",
            fqdn=f"relay{k}.relay.example.net",
            ssh_hostname=f"198.18.1.{10 + k}",
            ips=[
                RelayIp(
                    name=f"eu-{k}",
                    address=f"198.18.1.{10 + k}",  # type: ignore[arg-type]
                    pool="shared-eu",
                    ptr=f"relay{k}.relay.example.net",
                )
            ],
            tls="lab-ca",
        )
        for k in range(1, relays + 1)
    ]
    return Inventory(name="lab", path=Path("inventory/lab.py"), hosts=hosts, shared_counters=url)


def _files(k: int) -> dict[str, bytes]:
    placement = sentinel_placement(_inventory())
    assert placement is not None
    member = placement.member(f"relay{k}.relay.example.net")
    assert member is not None
    files = sentinel_files(placement, member, PASSWORDS, certificate=CERT, ca=b"-----CA-----\n")
    return {w.path: w.content for w in files}


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("path", [SENTINEL_CONF, REDIS_DROPIN])
def test_rendered_like_the_golden_file(k: int, path: str, update_golden: bool) -> None:
    golden = HERE / f"relay{k}{path.replace('/', '_')}"
    content = _files(k)[path]
    if update_golden:
        golden.write_bytes(content)
    assert content.decode() == golden.read_text()


def test_primary_first_quorum_a_majority_tls_data_port() -> None:
    placement = sentinel_placement(_inventory())
    assert placement is not None
    assert [m.address for m in placement.members] == ["198.18.1.11", "198.18.1.12", "198.18.1.13"]
    assert (placement.primary, placement.quorum, placement.data_port) == (
        "198.18.1.11", 2, 6380,
    )  # fmt: skip
    assert placement.member("relay9.relay.example.net") is None


def test_relay3_is_like_relay2_but_its_own_address() -> None:
    three = _files(3)[SENTINEL_CONF].decode()
    assert three == _files(2)[SENTINEL_CONF].decode().replace("198.18.1.12", "198.18.1.13")
    assert "replicaof 198.18.1.11 6380" in _files(3)[REDIS_DROPIN].decode()
    assert "replicaof" not in _files(1)[REDIS_DROPIN].decode()


def test_files_modes_and_owners() -> None:
    placement = sentinel_placement(_inventory())
    assert placement is not None
    files = sentinel_files(placement, placement.members[1], PASSWORDS, certificate=CERT, ca=b"c")
    found = {w.path: (w.mode, w.user, w.group, w.secret, w.seed) for w in files}
    assert found == {
        REDIS_DROPIN: (0o600, "redis", "redis", True, False),
        rc.ACL_FILE: (0o640, "root", "redis", False, False),
        "/etc/redis/tls/fullchain.pem": (0o644, "redis", "redis", False, False),
        "/etc/redis/tls/privkey.pem": (0o600, "redis", "redis", True, False),
        "/etc/redis/tls/ca.pem": (0o644, "redis", "redis", False, False),
        SENTINEL_CONF: (0o600, "redis", "redis", True, True),
        rc.SENTINEL_ACL_FILE: (0o640, "root", "redis", False, False),
    }
    assert set(SENTINEL_PATHS) == {SENTINEL_CONF, rc.SENTINEL_ACL_FILE}
    acl = next(w for w in files if w.path == rc.SENTINEL_ACL_FILE).content.decode()
    assert "pd-test" not in acl and "sen-test" not in acl  # hashes only


def test_the_sentinel_file_is_written_when_missing_and_then_left_to_sentinel() -> None:
    placement = sentinel_placement(_inventory())
    assert placement is not None
    files = sentinel_files(placement, placement.members[0], PASSWORDS, certificate=CERT, ca=b"c")
    conf = next(w for w in files if w.path == SENTINEL_CONF)
    assert [c.content for c in file_changes([conf], {})] == [True]
    rewritten = PathState(Kind.FILE, 0o600, "redis", "redis", sha1="0" * 40)
    assert file_changes([conf], {SENTINEL_CONF: rewritten}) == []
    loose = PathState(Kind.FILE, 0o644, "redis", "redis", sha1="0" * 40)
    [change] = file_changes([conf], {SENTINEL_CONF: loose})
    assert (change.content, change.owner, change.mode) == (False, False, True)


def test_host_plan_starts_the_sentinel_after_redis_and_restarts_both_for_tls() -> None:
    from relayops.compile.files import HostConfig

    files = _files(2)
    placement = sentinel_placement(_inventory())
    assert placement is not None
    wanted = sentinel_files(placement, placement.members[1], PASSWORDS, certificate=CERT, ca=b"c")
    redis = [w for w in wanted if w.path not in SENTINEL_PATHS]
    sentinel = [w for w in wanted if w.path in SENTINEL_PATHS]
    name = "relay2.relay.example.net"
    config = HostConfig(host=name, fqdn=name, files=(), secrets=(), directories=())
    plan = host_plan(
        config, secrets={}, certificate=None, service_files=[], redis_files=redis,
        sentinel_files=sentinel,
    )  # fmt: skip
    assert plan.services == list(START_ORDER)
    assert plan.services[:2] == ["redis-server", "relayops-sentinel"]
    assert plan.reload_extra["/etc/redis/tls/privkey.pem"] == ("redis-server", "relayops-sentinel")
    assert plan.reload_extra[rc.SENTINEL_ACL_FILE] == ("relayops-sentinel",)
    assert plan.reload_extra[REDIS_DROPIN] == ("redis-server",)
    assert set(files) <= {w.path for w in plan.wanted}


def test_other_forms_run_no_sentinel() -> None:
    assert sentinel_placement(_inventory(None)) is None
    assert sentinel_placement(_inventory("rediss://relayops-policyd@198.18.1.11:6380/0")) is None
    elsewhere = "redis+sentinel://relayops-policyd@10.9.0.1,10.9.0.2,10.9.0.3/relayops/0"
    assert sentinel_placement(_inventory(elsewhere)) is None


def test_the_relays_of_this_inventory_run_their_part_of_a_larger_group() -> None:
    """Relays 1-2 here, relay 3 in another inventory: the same files on relays 1-2."""
    two = sentinel_placement(_inventory(relays=2))
    assert two is not None
    assert (two.addresses[2], two.quorum, [m.address for m in two.members]) == (
        "198.18.1.13", 2, ["198.18.1.11", "198.18.1.12"],
    )  # fmt: skip
    for k in (1, 2):
        member = two.member(f"relay{k}.relay.example.net")
        assert member is not None
        files = sentinel_files(two, member, PASSWORDS, certificate=CERT, ca=b"-----CA-----\n")
        assert {w.path: w.content for w in files} == _files(k)


def test_the_wrong_user_or_a_host_named_twice_is_refused() -> None:
    anonymous = "redis+sentinel://198.18.1.11,198.18.1.12,198.18.1.13/relayops/0"
    with pytest.raises(DeployError, match="name the daemon's ACL user"):
        sentinel_placement(_inventory(anonymous))
    twice = "redis+sentinel://relayops-policyd@198.18.1.11:26379,198.18.1.11:26380/relayops/0"
    with pytest.raises(DeployError, match="one host named twice"):
        sentinel_placement(_inventory(twice))
