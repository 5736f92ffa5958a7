"""A DKIM rotation on the lab while a customer sends every second: no message fails.

Three `relayops dkim rotate` steps, each deployed (publish the new selector, switch
signing to it, retire the old one). Every delivered message is verified with dkimpy
against the lab DNS, independently of the project's own check code.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner

from e2e.mailflow import send, wait_all
from relayops.cli import cli
from relayops.lab.mail import lab_dnsfunc
from support.deployed import Deployed, copy_example, publish_and_deploy

pytestmark = pytest.mark.lab

DOMAIN = "globex.example"


class Sender(threading.Thread):
    """globex-mailer sends one message a second through relay1 until stopped."""

    def __init__(self, deployed: Deployed) -> None:
        super().__init__(daemon=True)
        self.deployed = deployed
        self.stop = threading.Event()
        self.subjects: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                subject, refused = send(self.deployed, "relay1", "globex-mailer",
                                        f"rotation@{DOMAIN}", ("rotation@isp.lab",))  # fmt: skip
                self.subjects.append(subject)
                if refused:
                    self.errors.append(f"{subject}: {refused}")
            except Exception as exc:
                self.errors.append(repr(exc))
            self.stop.wait(1.0)


def _rotate(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["dkim", "rotate", DOMAIN, *args, "--repo", str(root)])
    assert result.exit_code == 0, result.output
    return result.output


def _verified_selectors(deployed: Deployed, subjects: list[str]) -> list[str]:
    """Wait for `subjects` at the sink and verify each with dkimpy; their selectors in order.

    Verified as a receiver would, soon after arrival: before the old record is retired.
    """
    wait_all(deployed.lab.sink, subjects, timeout=90)
    wanted = set(subjects)
    dnsfunc = lab_dnsfunc(deployed.lab.topology.dns.address)
    selectors: list[str] = []
    for arrived in deployed.lab.sink.messages():
        if str(arrived.message["Subject"]) not in wanted:
            continue
        verifier = dkim.DKIM(arrived.path.read_bytes())
        assert verifier.verify(dnsfunc=dnsfunc), arrived.message["Subject"]
        assert verifier.domain == DOMAIN.encode()
        selectors.append((verifier.selector or b"").decode())
    assert len(selectors) == len(wanted)
    return selectors


def test_rotation_while_sending_loses_no_signature(
    tmp_path: Path, deployed: Deployed, example_afterwards: None
) -> None:
    root = copy_example(tmp_path / "repo")
    sender = Sender(deployed)
    sender.start()
    try:
        time.sleep(3)
        _rotate(root, "--selector", "g2")
        publish_and_deploy(deployed.lab, root)
        time.sleep(3)
        # Refused unless g2 answers with the repository's key in the lab DNS.
        _rotate(root, "--nameserver", deployed.lab.topology.dns.address)
        publish_and_deploy(deployed.lab, root)
        time.sleep(3)
        before_retire = list(sender.subjects)
        selectors = _verified_selectors(deployed, before_retire)
        _rotate(root, "--force")  # retire g1 now rather than in 7 days
        publish_and_deploy(deployed.lab, root)
        time.sleep(3)
    finally:
        sender.stop.set()
        sender.join(timeout=60)
    assert sender.errors == []
    after_retire = sender.subjects[len(before_retire) :]
    assert len(before_retire) >= 6 and len(after_retire) >= 3
    # g1 before the switch, g2 from it on, in that order: never unsigned, never unverifiable.
    switch = selectors.index("g2")
    assert switch > 0 and set(selectors[:switch]) == {"g1"} and set(selectors[switch:]) == {"g2"}
    assert set(_verified_selectors(deployed, after_retire)) == {"g2"}
