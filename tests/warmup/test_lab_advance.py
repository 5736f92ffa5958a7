"""Show (#12 step 4) on the lab: a warm-up day with blocks holds; a clean day advances.

globex sends from its dedicated IP (dedicated-1 on relay1, output instance
postfix-ip-dedicated-1), whose deliveries Postfix logs to /var/log/<instance>.log.
"Day" here is the slice of that log one phase wrote: both phases run on one real day.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from e2e.mailflow import send
from relayops.cli import cli
from relayops.lab.mail import token
from support.deployed import Deployed, copy_example

pytestmark = pytest.mark.lab

RUN = token()
RELAY, LOGIN, SENDER = "relay1", "globex-mailer", f"wu-{RUN}@globex.example"
LOG = "/var/log/postfix-ip-dedicated-1.log"
PER_DOMAIN = 25
# The sink's smtpd drops a session after 20 refused recipients (smtpd_hard_error_limit):
# fewer blocked recipients per message keeps each one a plain 550.
BLOCKED = 10


def _log_size(deployed: Deployed) -> int:
    status, out, err = deployed.lab.run(RELAY, f"stat -c %s {LOG} 2>/dev/null || echo 0")
    assert status == 0, err
    return int(out.strip())


def _phase(deployed: Deployed, domains: dict[str, int], out: Path, *, timeout: float = 120) -> str:
    """Send N recipients to each domain; the log lines about them, once all are final."""
    start = _log_size(deployed)
    for domain, n in domains.items():
        rcpts = tuple(f"wu-{RUN}-{i}@{domain}" for i in range(n))
        send(deployed, RELAY, LOGIN, SENDER, rcpts)
    # Plus the one bounce (DSN) to the sender's own domain when some were refused.
    want = sum(domains.values()) + ("blocked.lab" in domains)
    deadline = time.monotonic() + timeout
    while True:
        status, text, err = deployed.lab.run(RELAY, f"tail -c +{start + 1} {LOG}")
        assert status == 0, err
        # Delivery results only (qmgr's `from=<wu-…>` lines are no result).
        final = [
            x
            for x in text.splitlines()
            if f" to=<wu-{RUN}" in x and "status=" in x and "status=deferred" not in x
        ]
        if len(final) >= want:
            out.write_text(text)
            return text
        assert time.monotonic() < deadline, f"{len(final)} of {want} final log lines:\n{text}"
        time.sleep(1)


def test_blocks_hold_and_a_clean_day_proposes_the_next_stage(
    deployed: Deployed, tmp_path: Path
) -> None:
    repo = copy_example(tmp_path / "repo")
    blocked_log = tmp_path / "blocked.log"
    _phase(deployed, {"gmail.com": PER_DOMAIN, "blocked.lab": BLOCKED}, blocked_log)
    held = CliRunner().invoke(
        cli,
        ["warmup", "advance", "dedicated-1", "--maillog", str(blocked_log), "--repo", str(repo)],
    )
    print(held.output)
    assert held.exit_code == 1, held.output
    assert held.output == (
        "dedicated-1 (globex) holds at stage 5:\n"
        # the 10 refused, and the DSN to globex.example the IP delivered: 10 of 11
        f"  - other: bounce rate 90.9 % ({BLOCKED} of {BLOCKED + 1} attempts) is not under "
        "the ceiling of 5.0 %\n"
    )
    clean_log = tmp_path / "clean.log"
    _phase(deployed, {"gmail.com": PER_DOMAIN, "outlook.com": PER_DOMAIN}, clean_log)
    message = tmp_path / "message.txt"
    advanced = CliRunner().invoke(
        cli,
        [
            "warmup", "advance", "dedicated-1", "--maillog", str(clean_log), "--repo", str(repo),
            "--message-file", str(message),
        ],
    )  # fmt: skip
    print(advanced.output)
    assert advanced.exit_code == 0, advanced.output
    text = message.read_text()
    assert text.startswith("warmup: dedicated-1 (globex) to stage 6 of standard-5w\n")
    assert (
        f"  gmail: {PER_DOMAIN} attempted, {PER_DOMAIN} sent, 0 deferred (0.0 %), 0 bounced "
        "(0.0 %), 0 complaints (0.00 %)\n"
    ) in text
    assert (
        f"  microsoft: {PER_DOMAIN} attempted, {PER_DOMAIN} sent, 0 deferred (0.0 %), "
        "0 bounced (0.0 %), 0 complaints (0.00 %)\n"
    ) in text
    assert "Caps from stage 6: daily 40000.\n" in text
    assert "  stage: 6\n" in (repo / "customers" / "globex.yaml").read_text()
