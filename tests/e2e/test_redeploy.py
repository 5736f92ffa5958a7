"""Redeploys: nothing changed means nothing touched; a quota change under steady mail
flow loses no SMTP transaction and keeps every daemon's PID (reload, never restart)."""

from __future__ import annotations

import smtplib
import threading
import time
from dataclasses import dataclass, field

import pytest

from e2e.mailflow import send, wait_all, write_yaml_change
from relayops.deploy.runner import run_deploy
from support.deployed import EXAMPLE, Deployed, copy_example, publish_and_deploy
from support.lab import Lab

pytestmark = pytest.mark.lab

RELAYS = ("relay1", "relay2")
# The daemons whose PIDs must survive a redeploy (the policy daemon reloads on SIGHUP too).
DAEMONS = {
    "postfix": "cat /var/spool/postfix/pid/master.pid",
    "opendkim": "cat /run/opendkim/opendkim.pid",
    "dovecot": "cat /run/dovecot/master.pid",
    "policyd": "cat /run/relayops/policyd.pid",
}


def _pids(lab: Lab) -> dict[tuple[str, str], int]:
    pids = {}
    for relay in RELAYS:
        for name, command in DAEMONS.items():
            status, out, err = lab.run(relay, command)
            assert status == 0, f"{relay} {name}: {err}"
            pids[(relay, name)] = int(out.split()[0])
    return pids


def test_second_deploy_without_change_changes_nothing(deployed: Deployed) -> None:
    publish_and_deploy(deployed.lab, EXAMPLE)  # in step with the engine as it is now
    before = _pids(deployed.lab)
    result = run_deploy(EXAMPLE / "inventory" / "lab.py", capture=True)
    assert result.returncode == 0, result.output[-4000:]
    # Every operation is decided before the run: with nothing to change, none is emitted.
    assert "--> Starting operation" not in result.output, result.output[-4000:]
    assert _pids(deployed.lab) == before


@dataclass
class SteadySender:
    """Sends one message every `interval` seconds through relay1 until stopped."""

    deployed: Deployed
    interval: float = 0.1
    sent: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                subject, refused = send(
                    self.deployed, "relay1", "acme-app", "flow@acme.example", ("flow@isp.lab",)
                )
                if refused:
                    self.failures.append(f"refused {refused}")
                else:
                    self.sent.append(subject)
            except (smtplib.SMTPException, OSError) as exc:
                self.failures.append(repr(exc))
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def test_quota_change_under_steady_mail_keeps_every_transaction_and_pid(
    deployed: Deployed, tmp_path_factory: pytest.TempPathFactory, example_afterwards: None
) -> None:
    root = copy_example(tmp_path_factory.mktemp("flow") / "repo")
    write_yaml_change(
        root, "customers/acme.yaml", "plan: business\n", "plan: business\nquota_override: 12000\n"
    )
    publish_and_deploy(deployed.lab, EXAMPLE)  # in step with the engine as it is now
    before = _pids(deployed.lab)
    sender = SteadySender(deployed)
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    try:
        time.sleep(2)
        changed = publish_and_deploy(deployed.lab, root)
        time.sleep(2)
    finally:
        sender.stop.set()
        thread.join(timeout=60)
    assert sender.failures == []
    assert len(sender.sent) >= 20
    output = changed.result.output
    assert "Reload relayops-policyd" in output, output[-4000:]
    assert "Restart" not in output and "Reload postfix" not in output, output[-4000:]
    assert _pids(deployed.lab) == before
    wait_all(deployed.lab.sink, sender.sent)
    _, policy, _ = deployed.lab.run("relay1", "cat /etc/relayops/policy.json")
    assert '"daily_quota": 12000' in policy
