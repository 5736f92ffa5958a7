"""A failing `postfix check` stops that host's deploy before any reload; the others go on.

Operation names are pyinfra's: the step's group (`@deploy` name), ` | `, the operation.
The removals (docs/deploy.md, "Removals": a suspended customer's DKIM keys leave the
hosts) come last, after the reloads, so the failed host keeps them too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.mailflow import write_yaml_change
from relayops.deploy.runner import run_deploy
from support.deployed import EXAMPLE, Deployed, copy_example, publish_and_deploy
from support.lab import Lab

pytestmark = pytest.mark.lab

BROKEN = "relay2"
PIDS = "cat /var/spool/postfix/pid/master.pid /run/opendkim/opendkim.pid /run/relayops/policyd.pid"
RELOADS = "grep -c event=rules_reloaded /var/log/relayops/policyd.log || true"
CHECK = "Configuration checks | Check postfix configuration: postfix -c /etc/postfix check"
STARK_KEY_DIRS = [
    f"/etc/opendkim/keys/{d}"
    for d in ("stark.example", "stark-shipping.example", "starkfreight.example")
]  # in the deploy's removal order (relayops.deploy.removal.removal_position)


@pytest.fixture
def broken_postfix_check(deployed: Deployed) -> Iterator[Lab]:
    """relay2's `postfix check` fails (its postconf is not executable) until the test ends."""
    publish_and_deploy(deployed.lab, EXAMPLE)  # in step with the engine as it is now
    status, _, err = deployed.lab.run(BROKEN, "chmod -x /usr/sbin/postconf && ! postfix check")
    assert status == 0, err
    try:
        yield deployed.lab
    finally:
        deployed.lab.run(BROKEN, "chmod +x /usr/sbin/postconf")
        publish_and_deploy(deployed.lab, EXAMPLE)


def operations(output: str) -> dict[str, list[str]]:
    """pyinfra's run log as {operation name: the host lines under it}, in run order.

    A host line `Skipped` is an operation whose condition was false on that host (an
    output instance whose files did not change is neither checked nor restarted): it did
    not run, and an operation that ran nowhere is left out."""
    ran: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("--> Starting operation: "):
            current = ran.setdefault(line.removeprefix("--> Starting operation: ").strip(), [])
        elif line.startswith("-->"):
            current = None
        elif current is not None and line.strip() and not line.strip().endswith("] Skipped"):
            current.append(line.strip())
    return {name: lines for name, lines in ran.items() if lines}


def _state(lab: Lab, relay: str) -> tuple[str, int]:
    _, pids, _ = lab.run(relay, PIDS)
    _, reloads, _ = lab.run(relay, RELOADS)
    return pids, int(reloads.strip() or 0)


def test_failed_check_stops_only_that_host_before_any_reload(
    broken_postfix_check: Lab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lab = broken_postfix_check
    root = copy_example(tmp_path_factory.mktemp("check") / "repo")
    # Suspending a customer changes sender_logins (Postfix), the DKIM tables and the rules.
    write_yaml_change(
        root,
        "customers/stark.yaml",
        "plan: starter\n",
        "status: suspended\nstatus_reason: e2e test\nstatus_date: 2026-11-20\nplan: starter\n",
    )
    before = {relay: _state(lab, relay) for relay in ("relay1", BROKEN)}
    result = run_deploy(root / "inventory" / "lab.py", capture=True)
    assert result.returncode != 0, result.output[-4000:]
    ran = operations(result.output)
    relay1, relay2 = (f"[{r}.relay.example.net]" for r in ("relay1", BROKEN))
    # The check ran on both: relay1 passed, relay2 failed with postfix check's own error.
    assert sorted(ran[CHECK]) == [
        f"{relay1} Success",
        f"{relay2} /usr/lib/postfix/sbin/postfix-script: 1: /usr/sbin/postconf: Permission denied",
        f"{relay2} Error: executed 0 commands",
    ]
    # No service was started or reloaded before the check, on either host.
    checked_at = list(ran).index(CHECK)
    assert not [n for n in list(ran)[:checked_at] if n.startswith("Services | ")]
    # Nothing after it ran on relay2; relay1 went on to its checks, reloads and removals.
    after = list(ran)[checked_at + 1 :]
    assert after == [
        "Configuration checks | Check opendkim configuration: opendkim -n",
        "Services | Reload opendkim",
        "Services | Reload relayops-policyd",
        "Services | Reload postfix",
        *(f"Remove file of stark {d}/s1.private" for d in STARK_KEY_DIRS),
        *(f"Remove directory of stark {d}" for d in STARK_KEY_DIRS),
        "Update managed paths in /var/lib/relayops/managed.json",
    ]
    assert all(ran[name] == [f"{relay1} Success"] for name in after)
    pids, reloads = _state(lab, BROKEN)
    assert (pids, reloads) == before[BROKEN], "nothing on the failed host was reloaded"
    pids1, reloads1 = _state(lab, "relay1")
    assert pids1 == before["relay1"][0] and reloads1 == before["relay1"][1] + 1
    # The failed host removed nothing: stark's keys are still there, only there.
    keys = " ".join(f"{d}/s1.private" for d in STARK_KEY_DIRS)
    assert lab.run(BROKEN, f"ls {keys}")[0] == 0
    assert lab.run("relay1", f"ls {keys}")[0] == 2
