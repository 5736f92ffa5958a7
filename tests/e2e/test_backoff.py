"""Automatic back-off on the lab (#12 step 3, the second Show).

A deferral storm from one lab ISP (the sink answers every relay with Yahoo's TSS04 for
yahoo.com) pauses only that sending IP × class within a minute: globex's dedicated IP
(198.18.0.111, output instance postfix-ip-dedicated-1) stops sending to yahoo.com while its
gmail.com and outlook.com mail keeps flowing, and acme's pool IP still reaches yahoo.com.
The pause (the example's lab policy: `back_off.pause_seconds: 30` for yahoo) ends by
itself and the held mail leaves without anyone acting. Facts come from the relay's own
files: its instance log, the watcher's log, its queue, its pauses (`relayops backoff
status` on the relay, `relayops feedback status` here on the relay's file) and metrics.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from e2e.mailflow import send
from relayops.backoff.names import METRICS_PORT, SOCKETMAP_ADDRESS
from relayops.lab import receivers
from relayops.lab.mail import token
from relayops.lab.sink import Arrived, Sink
from support.deployed import Deployed

pytestmark = pytest.mark.lab

RUN = token()
RELAY = "relay1"
GLOBEX = ("globex-mailer", f"bo-{RUN}@globex.example")  # dedicated-1, 198.18.0.111
ACME = ("acme-app", f"bo-{RUN}@acme.example")  # the shared-eu pool, 198.18.0.11
GLOBEX_IP = "198.18.0.111"
SENDER = "ip-dedicated-1"  # the pause's key: the output instance's egress
INSTANCE_LOG = "var/log/postfix-ip-dedicated-1.log"
WATCH_LOG = "var/log/relayops/backoff-watch.log"
PAUSES = "var/lib/relayops/pauses.sqlite"
PAUSE_SECONDS = 30  # policies/throttling.yaml, yahoo's back_off.pause_seconds
RELAYOPS = "/opt/relayops/venv/bin/relayops"


def _root(deployed: Deployed) -> Path:
    lab = deployed.lab
    return lab.topology.root(lab.host(RELAY))


def _pauses(deployed: Deployed) -> list[dict[str, Any]]:
    """`relayops backoff status --json` on the relay itself (the relay wheel's command)."""
    status, out, err = deployed.lab.run(RELAY, f"{RELAYOPS} backoff status --json")
    assert status == 0, err
    pauses: list[dict[str, Any]] = json.loads(out)["pauses"]
    return pauses


def _arrived(sink: Sink, recipients: list[str]) -> dict[str, Arrived]:
    wanted = set(recipients)
    return {a.recipient: a for a in sink.messages() if a.recipient in wanted}


def _wait_arrived(sink: Sink, recipients: list[str], *, timeout: float) -> dict[str, Arrived]:
    deadline = time.monotonic() + timeout
    while True:
        found = _arrived(sink, recipients)
        if len(found) == len(recipients):
            return found
        assert time.monotonic() < deadline, f"arrived {sorted(found)} of {recipients}"
        time.sleep(0.5)


def _log_lines(path: Path, since: int, recipient: str) -> list[str]:
    text = path.read_bytes()[since:].decode("utf-8", "replace")
    return [line for line in text.splitlines() if f"to=<{recipient}>" in line]


def _clock(line: str) -> str:
    """The HH:MM:SS of a Postfix maillog_file line (`Dec  1 13:01:31 host …`)."""
    found = re.match(r"^[A-Z][a-z]{2} +\d+ (\d\d:\d\d:\d\d)", line)
    assert found, line
    return found.group(1)


def test_a_tss04_storm_pauses_only_that_ip_and_class_and_lifts_by_itself(
    deployed: Deployed,
) -> None:
    sink = deployed.lab.sink
    sink.refresh()
    root = _root(deployed)
    log, watch_log = root / INSTANCE_LOG, root / WATCH_LOG
    log_offset = log.stat().st_size if log.exists() else 0
    watch_offset = watch_log.stat().st_size
    assert [p for p in _pauses(deployed) if p["ip"] == SENDER and p["isp_class"] == "yahoo"] == []

    yahoo = [f"bo-y{i}-{RUN}@yahoo.com" for i in range(3)]
    others = [f"bo-g{i}-{RUN}@gmail.com" for i in range(3)] + [f"bo-o-{RUN}@outlook.com"]
    sink.defer_volume(("yahoo.com",))
    try:
        started = time.monotonic()
        for rcpt in [*yahoo, *others]:
            _, refused = send(deployed, RELAY, *GLOBEX, (rcpt,))
            assert refused == {}
        # Within a minute: exactly that IP × class is paused, for the policy's time.
        while not (pauses := _pauses(deployed)):
            assert time.monotonic() - started < 60, "no pause within a minute"
            time.sleep(0.5)
        paused_after = time.monotonic() - started
        storm = receivers.reply(receivers.VOLUME_DEFERRAL, ip=GLOBEX_IP)
        assert [(p["ip"], p["isp_class"], p["kind"], p["reply"]) for p in pauses] == [
            (SENDER, "yahoo", "yahoo-tss", storm)
        ]
        (pause,) = pauses
        # The policy's 30 s from the first TSS04; a later TSS04 (a delivery already under
        # way) extends it, never shortens it.
        assert pause["until"] - pause["since"] >= PAUSE_SECONDS
        first_until = datetime.fromtimestamp(pause["since"] + PAUSE_SECONDS, UTC)
        print(f"paused {paused_after:.1f} s after the first send, until {first_until:%H:%M:%S}")
        # Other classes keep flowing from the same IP meanwhile.
        flowed = _wait_arrived(sink, others, timeout=max(1.0, pause["until"] - time.time() - 2))
        # The storm lasts until each yahoo.com message has been deferred once: a message
        # the queue manager had routed before the pause began is tried once more; after
        # that, only a new look-up (the end of the pause) routes it to yahoo.com again.
        deadline = time.monotonic() + 30
        while not all(
            any("status=deferred" in line for line in _log_lines(log, log_offset, rcpt))
            for rcpt in yahoo
        ):
            assert time.monotonic() < deadline, log.read_bytes()[log_offset:].decode()[-3000:]
            time.sleep(0.5)
    finally:
        sink.defer_volume(())  # the storm is over; the pause is not
    assert all(a.path.stat().st_mtime < pause["until"] for a in flowed.values())

    # New mail of the paused class waits in the IP's queue (Postfix defers it itself)...
    late = f"bo-y3-{RUN}@yahoo.com"
    _, refused = send(deployed, RELAY, *GLOBEX, (late,))
    assert refused == {}
    # ...while another IP (acme's pool) reaches yahoo.com at once: only that IP is paused.
    pool = f"bo-p-{RUN}@yahoo.com"
    _, refused = send(deployed, RELAY, *ACME, (pool,))
    assert refused == {}
    pooled = _wait_arrived(sink, [pool], timeout=max(1.0, pause["until"] - time.time() - 1))
    assert pooled[pool].path.stat().st_mtime < pause["until"]
    (pause,) = _pauses(deployed)  # as extended by the storm's last replies
    assert (pause["ip"], pause["isp_class"]) == (SENDER, "yahoo")
    until = datetime.fromtimestamp(pause["until"], UTC)

    # `relayops feedback status` shows it too (here, reading the relay's pauses file), and
    # the relay's metrics.
    shown = _feedback_status(deployed, root)
    assert [(p["ip"], p["isp_class"], p["until"]) for p in shown] == [
        (SENDER, "yahoo", pause["until"])
    ]
    metrics = _metrics(deployed)
    assert (
        f'relayops_backoff_paused{{ip="{SENDER}",isp_class="yahoo",kind="yahoo-tss"}} 1.0'
        in metrics
    )

    # The pause ends by itself and every held message leaves, without anyone acting.
    delivered = _wait_arrived(sink, [*yahoo, late], timeout=pause["until"] - time.time() + 50)
    assert all(a.path.stat().st_mtime >= pause["until"] - 1 for a in delivered.values())
    assert _pauses(deployed) == []

    # Exact facts from the instance's log.
    said = f"said: {storm} (in reply to RCPT TO command)"
    first = _log_lines(log, log_offset, yahoo[0])
    assert "status=deferred" in first[0] and said in first[0], first
    held = _log_lines(log, log_offset, late)
    reason = (
        f"status=deferred (relayops paused yahoo for {SENDER} until {until:%H:%M:%S} UTC "
        "after the receiver asked to slow down (yahoo-tss))"
    )
    assert held[0].endswith(reason) and "/error[" in held[0], held
    assert all("status=sent" not in line for line in first[:-1]), first
    for rcpt in [*yahoo, late]:
        sent = [line for line in _log_lines(log, log_offset, rcpt) if "status=sent" in line]
        assert len(sent) == 1, (rcpt, sent)
        assert "postfix-ip-dedicated-1/isp-yahoo/smtp[" in sent[0]
        assert _clock(sent[0]) >= f"{until:%H:%M:%S}"
    for rcpt in others:
        sent = [line for line in _log_lines(log, log_offset, rcpt) if "status=sent" in line]
        assert len(sent) == 1 and _clock(sent[0]) < f"{until:%H:%M:%S}", (rcpt, sent)
    # ...from the watcher's log: one pause, then the release.
    events = watch_log.read_bytes()[watch_offset:].decode().splitlines()
    assert [e for e in events if e.startswith("event=pause ")] == [
        f"event=pause ip={SENDER} class=yahoo kind=yahoo-tss until={first_until:%Y-%m-%dT%H:%M:%SZ}"
    ]
    assert any(e.startswith(f"event=resume ip={SENDER} class=yahoo scheduled=") for e in events)
    # ...and from the queue: nothing of this run is left.
    status, out, err = deployed.lab.run(RELAY, "postmulti -x postqueue -j")
    assert status == 0, err
    assert RUN not in out


def _feedback_status(deployed: Deployed, root: Path) -> list[dict[str, Any]]:
    argv = [
        sys.executable, "-m", "relayops", "feedback", "status", "--json",
        "--store", f"sqlite:{root / 'tmp' / f'bo-{RUN}.sqlite'}",
        "--rules", str(root / "etc/relayops/policy.json"), "--pauses", str(root / PAUSES),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    pauses: list[dict[str, Any]] = json.loads(done.stdout)["pauses"]
    return pauses


def _metrics(deployed: Deployed) -> str:
    url = f"http://{SOCKETMAP_ADDRESS}:{METRICS_PORT}/metrics"
    script = f"import urllib.request; print(urllib.request.urlopen({url!r}).read().decode())"
    status, out, err = deployed.lab.run(RELAY, f"python3 -c {json.dumps(script)}")
    assert status == 0, err
    return out


def test_drift_ignores_the_runtime_pauses(deployed: Deployed) -> None:
    """The pauses file changed since the deploy (the storm above wrote to it): no drift."""
    pauses = _root(deployed) / PAUSES
    assert pauses.stat().st_size > 0
    argv = [sys.executable, "-m", "relayops", "drift", "--repo", str(deployed.root),
            "--inventory", "lab", "--json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    report = json.loads(done.stdout)
    assert (done.returncode, report["ok"], report["drift"]) == (0, True, {}), done.stderr
