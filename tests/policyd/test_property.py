"""Random bytes and random attribute sets never crash the daemon nor stop it answering."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayops.policyd.protocol import MALFORMED_ACTION, OVERSIZE_ACTION
from support.policyd import Daemon, PolicyClient, encode, request, rules_data, write_rules

pytestmark = pytest.mark.real  # starts `relayops policyd` as a process

# Every answer the daemon may give: DUNNO, our tempfails, or a coded reply.
ANSWER = re.compile(r"(DUNNO|DEFER_IF_PERMIT 4\.\d\.\d [^\n]+|[45]\d\d [45]\.\d\.\d [^\n]+)")
PROBE_ANSWER = "553 5.7.1 sender domain probe.invalid is not registered for acme"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp: Path = tmp_path_factory.mktemp("property")
    rules = write_rules(tmp / "policy.json", rules_data(acme={"daily_quota": 50}))
    d = Daemon(tmp, rules, f"sqlite:{tmp / 'c.sqlite'}").start()
    yield d
    assert d.stop(signal.SIGTERM) == 0
    assert "Traceback" not in d.log()


def probe(client: PolicyClient) -> list[str]:
    """Send a well-formed request with a known answer; return the answers up to it."""
    client.send_raw(encode(request(sender="x@probe.invalid")))
    answers = []
    while True:
        answer = client.read_answer()
        answers.append(answer)
        if answer.startswith(PROBE_ANSWER):
            return answers


def assert_alive(daemon: Daemon) -> None:
    assert daemon.proc is not None and daemon.proc.poll() is None
    fresh = daemon.client()
    assert probe(fresh)[-1].startswith(PROBE_ANSWER)
    fresh.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(max_size=3000))
def test_random_bytes_then_a_request_on_the_same_connection(daemon: Daemon, garbage: bytes) -> None:
    client = daemon.client()
    client.send_raw(garbage + b"\n\n")
    try:
        answers = probe(client)
    except ConnectionError:
        answers = None  # closed on an oversize line: allowed, and a new connection works
    client.close()
    if answers is not None:
        assert set(answers[:-1]) <= {MALFORMED_ACTION, OVERSIZE_ACTION, "DUNNO"}
    assert_alive(daemon)


NAMES = st.sampled_from(
    [
        "request",
        "protocol_state",
        "sasl_username",
        "sender",
        "recipient",
        "size",
        "client_address",
        "queue_id",
        "instance",
        "ccert_subject",
    ]
) | st.text(st.characters(blacklist_characters="=\n\x00"), min_size=1, max_size=20)
VALUES = st.sampled_from(
    [
        "smtpd_access_policy",
        "RCPT",
        "MAIL",
        "END-OF-MESSAGE",
        "DATA",
        "acme-app",
        "ACME-CRM",
        "globex",
        "initech",
        "nobody",
        "a@acme.example",
        "@",
        "",
        "0",
        "99999999999999999999",
        "-1",
        "31457281",
        "x@bücher.example",
        "a@ACME.EXAMPLE.",
    ]
) | st.text(st.characters(blacklist_characters="\n"), max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attrs=st.dictionaries(NAMES, VALUES, max_size=30), well_formed=st.booleans())
def test_random_attribute_sets_get_a_well_formed_answer(
    daemon: Daemon, attrs: dict[str, str], well_formed: bool
) -> None:
    if well_formed:
        attrs["request"] = "smtpd_access_policy"
    client = daemon.client()
    payload = "".join(f"{k}={v}\n" for k, v in attrs.items())
    client.send_raw(payload.encode("utf-8", "surrogatepass") + b"\n")
    answer = client.read_answer()
    assert ANSWER.fullmatch(answer), answer
    if attrs.get("request") != "smtpd_access_policy":
        assert answer == MALFORMED_ACTION
    assert probe(client)[-1].startswith(PROBE_ANSWER)  # the connection goes on
    client.close()
