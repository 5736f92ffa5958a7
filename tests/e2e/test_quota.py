"""The daily quota through deployed relays: shared by two relays through Redis, the 4xx
past it, the warning mail at the sink. Runs on a copy of the example with a quota of 5."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from e2e.mailflow import refused_all, send, write_yaml_change
from relayops.deploy.counters import redis_placement
from relayops.deploy.tls import CA_PATH
from relayops.hostlayout import STORE_PASSWORD_FILE
from relayops.lab.mail import token
from relayops.lab.sink import Arrived
from support.deployed import Deployed, copy_example, publish_and_deploy

pytestmark = pytest.mark.lab

CUSTOMER = "umbrella"
LOGIN = "umbrella"
SENDER = "notices@umbrella.example"
RUN = token()  # recipients unique to this run: the sink keeps earlier runs' mail
CONTACT = f"umbrella-ops-{RUN}@isp.lab"
QUOTA = 5


def clear_counters(deployed: Deployed, customer: str = CUSTOMER) -> None:
    """Today's counters of the test customer go (the test may run twice on a day).

    As the daemon's ACL user over TLS (the deployed Redis has no default user); it may
    DEL its keys but not SCAN, so the keys of the days around today are named.
    """
    today = dt.datetime.now(dt.UTC).date()
    keys = [f"relayops:flag:complaint:{customer}"]
    for day in (today + dt.timedelta(days=d) for d in (-1, 0, 1)):
        keys.append(f"relayops:count:{customer}:{day}")
        keys += [f"relayops:notice:{customer}:{day}:{kind}" for kind in ("warning", "limit")]
    delete_keys(deployed, keys)


def delete_keys(deployed: Deployed, keys: list[str]) -> None:
    """DEL `keys` on the deployed Redis, as the daemon's ACL user over TLS."""
    placement = redis_placement(deployed.target.inventory)
    assert placement is not None
    script = (
        f'REDISCLI_AUTH="$(cat {STORE_PASSWORD_FILE})" redis-cli --no-auth-warning '
        f"-h {placement.address} -p {placement.port} --tls --cacert {CA_PATH} "
        f"--user {placement.user} DEL {' '.join(keys)}"
    )
    status, out, err = deployed.lab.run("relay1", script)
    assert status == 0 and out.strip().isdigit(), (out, err)


@pytest.fixture(scope="module")
def small_quota(
    tmp_path_factory: pytest.TempPathFactory, deployed: Deployed, example_afterwards: None
) -> Deployed:
    root = copy_example(tmp_path_factory.mktemp("quota") / "repo")
    write_yaml_change(
        root, f"customers/{CUSTOMER}.yaml", "quota_override: 15000", f"quota_override: {QUOTA}"
    )
    write_yaml_change(
        root,
        f"customers/{CUSTOMER}.yaml",
        "contact: mail-admin@umbrella.example",
        f"contact: {CONTACT}",
    )
    clear_counters(deployed)
    return publish_and_deploy(deployed.lab, root)


def test_two_relays_share_one_quota_and_refuse_past_it(small_quota: Deployed) -> None:
    rcpts = tuple(f"q{i}-{RUN}@isp.lab" for i in range(QUOTA))
    # 3 recipients through relay1, 2 through relay2: one day's count, kept in relay1's Redis.
    _, refused = send(small_quota, "relay1", LOGIN, SENDER, rcpts[:3])
    assert refused == {}
    _, refused = send(small_quota, "relay2", LOGIN, SENDER, rcpts[3:])
    assert refused == {}
    for relay in ("relay1", "relay2"):
        exc = refused_all(small_quota, relay, LOGIN, SENDER, (f"over-{RUN}@isp.lab",))
        code, reply = exc.recipients[f"over-{RUN}@isp.lab"]
        assert code == 452, reply
        text = reply.decode()
        assert "4.7.1" in text and f"daily quota of {QUOTA}" in text and CUSTOMER in text, text


WARNING_SUBJECT = "[Example Relay] 80 % of today's sending quota used (Umbrella Health)"
LIMIT_SUBJECT = "[Example Relay] daily sending quota reached (Umbrella Health)"


def _notice(subject: str) -> Callable[[Arrived], bool]:
    return lambda arrived: arrived.recipient == CONTACT and arrived.message["Subject"] == subject


def test_warning_mail_reaches_the_contact(small_quota: Deployed) -> None:
    """The 80 % warning itself (4 of 5), not just the limit notice: both arrive, once each."""
    sink = small_quota.lab.sink
    warning = sink.wait_for(_notice(WARNING_SUBJECT), timeout=60)
    body = warning.message.get_content()
    assert f'Your subscription "{CUSTOMER}" has sent 4 of its {QUOTA} messages allowed' in body
    sink.wait_for(_notice(LIMIT_SUBJECT), timeout=60)
    subjects = sorted(a.message["Subject"] for a in sink.messages() if a.recipient == CONTACT)
    assert subjects == sorted([WARNING_SUBJECT, LIMIT_SUBJECT])


def _to(recipient: str) -> Callable[[Arrived], bool]:
    return lambda arrived: arrived.recipient == recipient


def test_counted_messages_arrived(small_quota: Deployed) -> None:
    sink = small_quota.lab.sink
    for i in range(QUOTA):
        sink.wait_for(_to(f"q{i}-{RUN}@isp.lab"), timeout=60)
    assert not [a for a in sink.messages() if a.recipient == f"over-{RUN}@isp.lab"]
