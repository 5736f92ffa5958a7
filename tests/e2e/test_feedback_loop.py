"""Issue #10's loop end to end on the lab: what comes back to the relays' port 25 acts.

Everything goes through ordinary SMTP and the deployed relays: customers submit on 587,
the destination host (lab/receivers.py) refuses or accepts as ISPs do, the relay's DSN
reaches the customer's own mail server (the sink: MX of every customer domain), which
forwards it to bounces@<service> on a relay's port 25 (the design keeps the customer's
envelope sender, docs/feedback.md "Why no VERP"); the ISP host sends ARF reports to the
feedback address. The pipe transport ingests them into the shared Redis ledger; the
operator's commands (`relayops feedback status|release|propose`) run here, on the
controller, against the same store over TLS as the daemon's ACL user.

The variant deployed lowers the policy's minimum volume to 20 so that "enough
complaints past the minimum volume" takes 20 messages, not 3000; the ceiling
(1 per 3000) is the example's.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from e2e.mailflow import send, submission, write_yaml_change
from e2e.test_quota import clear_counters, delete_keys
from relayops.hostlayout import STORE_PASSWORD_FILE
from relayops.lab import arf, receivers
from relayops.lab.mail import authenticated, token
from relayops.lab.sink import REPORT_SENDER, REPORTER, Arrived, Sink, SmtpReplies
from support.deployed import Deployed, copy_example, publish_and_deploy
from support.processes import wait_found

pytestmark = pytest.mark.lab

RUN = token()
SERVICE = "relay.example.net"
BOUNCES = f"bounces@{SERVICE}"
FEEDBACK = f"fbl@{SERVICE}"
SPOOL = "/var/lib/relayops/feedback"  # on each relay (relay_cli.DEFAULT_SPOOL)
MIN_VOLUME = 20
# One customer per concern, so that a flag or a tally of one step never leaks into another.
# Each submits to the relay that carries its pool (initech, soylent: shared-us and wayne's
# dedicated address on relay2; stark: shared-eu on relay1).
RELAY = {"initech": "relay2", "stark": "relay1", "soylent": "relay2", "wayne": "relay2"}
BOUNCER = ("initech", "initech", f"fb-{RUN}@initech.example")  # customer, login, sender
COMPLAINED = ("stark", "stark", f"fb-{RUN}@stark.example")
BREACHING = ("soylent", "soylent", f"fb-{RUN}@soylent.example")
BYSTANDER = ("wayne", "wayne-ops", f"fb-{RUN}@wayne.example")  # named by a forged report
CONTACT = f"abuse-desk-{RUN}@stark.example"  # stark's contact: its domain's MX is the sink
CUSTOMERS = tuple(c for c, _, _ in (BOUNCER, COMPLAINED, BREACHING, BYSTANDER))


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _clear_ledger(deployed: Deployed, customers: tuple[str, ...]) -> None:
    """Yesterday's and today's feedback tallies of the test customers (a second run on the
    same day starts from zero), as the daemon's ACL user, like `clear_counters`."""
    today = dt.datetime.now(dt.UTC).date()
    keys = [
        f"relayops:fb:tally:{c}:{today + dt.timedelta(days=d)}"
        for c in customers
        for d in (-1, 0, 1)
    ]
    delete_keys(deployed, keys)


@pytest.fixture(scope="module")
def loop(
    tmp_path_factory: pytest.TempPathFactory, deployed: Deployed, example_afterwards: None
) -> Deployed:
    root = copy_example(tmp_path_factory.mktemp("feedback") / "repo")
    write_yaml_change(
        root, "policies/antispam.yaml", "min_volume: 3000", f"min_volume: {MIN_VOLUME}"
    )
    write_yaml_change(
        root, "customers/stark.yaml", "contact: admin@stark.example", f"contact: {CONTACT}"
    )
    for customer in CUSTOMERS:
        clear_counters(deployed, customer)  # also the complaint flag
    _clear_ledger(deployed, CUSTOMERS)
    return publish_and_deploy(deployed.lab, root)


@pytest.fixture(scope="module")
def sink(loop: Deployed) -> Sink:
    found = loop.lab.sink
    found.refresh()
    return found


# ---- the operator's commands, on the controller, against the deployed store ----------------


@pytest.fixture(scope="module")
def operator(
    loop: Deployed, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., dict[str, Any]]:
    """Run `relayops feedback …` here against the lab's Redis (the inventory's URL with the
    controller's copy of the lab CA); its --json output."""
    spec = loop.target.inventory.shared_counters
    assert spec is not None
    parts = urlsplit(spec)
    query = dict(parse_qsl(parts.query))
    query["ca"] = str(loop.ca_file)
    store = urlunsplit(parts._replace(query=urlencode(query)))
    status, password, err = loop.lab.run("relay1", f"cat {STORE_PASSWORD_FILE}")
    assert status == 0, err
    secret = tmp_path_factory.mktemp("operator") / "redis-password"
    secret.write_text(password)
    secret.chmod(0o600)

    def run(*args: str, check: bool = True) -> dict[str, Any]:
        argv = [sys.executable, "-m", "relayops", "feedback", *args, "--json"]
        argv += ["--store", store, "--store-password-file", str(secret)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=os.environ)
        if check:
            assert done.returncode == 0, (argv, done.stdout, done.stderr)
        data: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
        data["_exit"] = done.returncode
        return data

    return run


def _status(operator: Callable[..., dict[str, Any]], customer: str, rules: Path) -> dict[str, Any]:
    rows = operator("status", "--customer", customer, "--rules", str(rules))["customers"]
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


@pytest.fixture(scope="module")
def rules(loop: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployed policy.json (the status command reads the policy's ceilings from it)."""
    status, out, err = loop.lab.run("relay1", "cat /etc/relayops/policy.json")
    assert status == 0, err
    path = tmp_path_factory.mktemp("rules") / "policy.json"
    path.write_text(out)
    return path


_wait = functools.partial(wait_found, timeout=60, every=0.5)


# ---- sending, and what the relay answers --------------------------------------------------


def _rcpt_reply(deployed: Deployed, who: tuple[str, str, str], rcpt: str) -> tuple[int, str]:
    """The relay's answer to RCPT TO:<rcpt> for `who` (250 when the message was accepted)."""
    customer, login, sender = who
    try:
        _, refused = send(deployed, RELAY[customer], login, sender, (rcpt,))
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients[rcpt]
        return code, text.decode()
    assert refused == {}
    return 250, ""


def _rcpt_probe(deployed: Deployed, who: tuple[str, str, str], rcpt: str) -> tuple[int, str]:
    """The relay's answer to RCPT TO:<rcpt>, and no message: RSET after it (probing a
    recipient the ISP host refuses must not make more refusals)."""
    customer, login, sender = who
    sub = submission(deployed, RELAY[customer], login, sender, (rcpt,))
    with authenticated(sub) as smtp:
        smtp.mail(sender)
        code, text = smtp.rcpt(rcpt)
        smtp.rset()
    return code, "" if code == 250 else text.decode()


def _dsn_to(sink: Sink, sender: str, rcpt: str) -> Arrived:
    """The relay's DSN about `rcpt`, as the customer's mail server (the sink) got it."""
    return sink.wait_for(
        lambda a: a.recipient == sender and rcpt.encode() in a.path.read_bytes(), timeout=90
    )


def _accepted(replies: SmtpReplies) -> None:
    assert replies.mail[0] == 250 and replies.rcpt[0] == 250, replies
    assert replies.data is not None and replies.data[0] == 250, replies


def _outcome(deployed: Deployed, replies: SmtpReplies, marker: str) -> dict[str, Any]:
    """The ingester's outcome (<sha256>.json beside the spooled message) on the relay that
    took the message, found by a marker only that message carries."""
    relay = replies.host.split(".")[0]
    script = f"grep -l -F -- {marker!r} {SPOOL}/*.eml | head -n 1"

    def found() -> dict[str, Any] | None:
        status, out, _ = deployed.lab.run(relay, script)
        eml = out.strip()
        if status != 0 or not eml:
            return None
        status, text, _ = deployed.lab.run(relay, f"cat {eml[: -len('.eml')]}.json")
        if status != 0 or not text.strip():
            return None
        data: dict[str, Any] = json.loads(text)
        return data

    outcome: dict[str, Any] = _wait(f"the outcome of {marker} on {relay}", found)
    return outcome


# ---- 1. a hard bounce suppresses the recipient for that customer ------------------------------


GONE = f"unknown-{RUN}@isp.lab"  # lab/receivers.py: 550 5.1.1 User unknown


def _suppressed_reply(rcpt: str) -> tuple[int, str]:
    """The daemon's answer (`550 5.1.1 <addr> suppressed since DATE after a hard bounce`)
    as Postfix's smtpd words a policy refusal on the wire."""
    daemon = f"<{rcpt}> suppressed since {_today()} after a hard bounce"
    return 550, f"5.1.1 <{rcpt}>: Recipient address rejected: {daemon}"


def _refused_until_suppressed(deployed: Deployed, who: tuple[str, str, str], rcpt: str) -> float:
    """Send to `rcpt` (the ISP host refuses it at RCPT: the relay's own synchronous 5xx),
    then probe until the customer's next RCPT gets the 550 "suppressed": read from the
    output instance's log by the relay's follower, no DSN ingested. The seconds it took."""
    assert _rcpt_reply(deployed, who, rcpt) == (250, "")
    started = time.monotonic()
    got = _wait(
        f"the 550 for {rcpt}",
        lambda: (r := _rcpt_probe(deployed, who, rcpt))[0] != 250 and r,
        timeout=60,
    )
    assert got == _suppressed_reply(rcpt)
    return time.monotonic() - started


@pytest.mark.parametrize("relay", ["relay1", "relay2"])
def test_the_log_follower_runs_on_every_relay_over_every_instance_log(
    loop: Deployed, relay: str
) -> None:
    """`relayops-maillog` runs as the daemon's account and follows the maillog_file of
    each output instance the relay has (positions.json names them all)."""
    script = (
        "for c in $(postmulti -l | awk '$1 != \"-\" {print $4}'); do "
        "postconf -c $c -h maillog_file; done | sort; echo --; "
        "ps -o user=,args= -p $(cat /run/relayops/maillog.pid); echo --; "
        "cat /var/lib/relayops/maillog/positions.json"
    )
    status, out, err = loop.lab.run(relay, script)
    assert status == 0, (out, err)
    logs_text, process, positions_text = out.split("--\n")
    logs = logs_text.split()
    assert logs and all(re.fullmatch(r"/var/log/postfix-[a-z0-9-]+\.log", f) for f in logs), out
    user, args = process.strip().split(None, 1)
    assert user == "relayops", process
    assert (
        "/opt/relayops/venv/bin/relayops feedback maillog /var/log/postfix-*.log --follow "
        "--state-dir /var/lib/relayops/maillog "
    ) in args, process
    assert sorted(json.loads(positions_text)) == logs


@pytest.mark.parametrize(
    ("who", "rcpt"),
    [(COMPLAINED, f"unknown-r1-{RUN}@isp.lab")],
    ids=["relay1"],
)
def test_relays_own_refusals_are_read_from_its_log(
    loop: Deployed, who: tuple[str, str, str], rcpt: str
) -> None:
    """relay1's refusal (stark's pool is there); relay2's is the `hard_bounce` fixture's."""
    delay = _refused_until_suppressed(loop, who, rcpt)
    print(f"\nrefusal at RCPT → 550 suppressed on {RELAY[who[0]]}: {delay:.2f} s")
    assert delay < 30


@pytest.fixture(scope="module")
def hard_bounce(
    loop: Deployed, sink: Sink, operator: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """initech's refusal on relay2, read from the log; then the relay's DSN about it,
    forwarded by the customer's mail server to bounces@ (the same refusal)."""
    delay = _refused_until_suppressed(loop, BOUNCER, GONE)
    print(f"\nrefusal at RCPT → 550 suppressed on {RELAY[BOUNCER[0]]}: {delay:.2f} s")
    dsn = _dsn_to(sink, BOUNCER[2], GONE)
    replies = sink.send(dsn.path.read_bytes(), to=BOUNCES, sender=BOUNCER[2])
    _accepted(replies)
    return _outcome(loop, replies, GONE)


def test_hard_bounce_is_ingested_for_its_customer_and_counted_once(
    hard_bounce: dict[str, Any],
) -> None:
    assert (hard_bounce["kind"], hard_bounce["customer"]) == ("bounce", "initech")
    assert (hard_bounce["counts"], hard_bounce["suppressed"]) == ({"hard": 1}, [GONE])
    # The follower had recorded it from the log: the DSN of it is not counted again.
    assert (hard_bounce["applied"], hard_bounce["recorded_before"]) == (False, [GONE])
    assert hard_bounce["disabled"] is None


def test_next_message_to_the_bounced_recipient_is_refused_at_rcpt(
    loop: Deployed, hard_bounce: dict[str, Any]
) -> None:
    assert _rcpt_reply(loop, BOUNCER, GONE) == _suppressed_reply(GONE)
    # Only for that customer: another customer may still write to the address.
    assert _rcpt_reply(loop, BYSTANDER, GONE) == (250, "")


def test_garbage_in_an_instance_log_is_kept_and_acts_on_nothing(
    loop: Deployed, operator: Callable[..., dict[str, Any]], rules: Path
) -> None:
    """Lines no Postfix writes, appended to relay2's instance log: kept in unparsed.jsonl,
    logged; the follower keeps running (same PID) and nobody's figures move."""
    marker = f"garbage-{RUN}"
    before = _status(operator, "initech", rules)
    lines = (
        f"\\001\\002{marker} binary\\n"  # printf(1)'s octal escapes (dash has no \\x)
        f"Dec  1 07:10:0 {marker} cut\\n"
        f"Dec  1 07:10:01 relay2 postfix-pool-shared-us/smtp[1]: 7Hh1Jk90: to=<{marker}@x>, "
        "status=bounced (cut\\n"
    )
    script = (
        "pid=$(cat /run/relayops/maillog.pid); "
        "log=$(ls /var/log/postfix-*.log | head -n 1); "
        f"printf '{lines}' >> $log; echo $pid"
    )
    status, out, err = loop.lab.run("relay2", script)
    assert status == 0, err
    pid = out.strip()

    def kept() -> list[dict[str, Any]]:
        _, text, _ = loop.lab.run("relay2", "cat /var/lib/relayops/maillog/unparsed.jsonl")
        rows = [json.loads(line) for line in text.splitlines() if marker in line]
        return rows if len(rows) == 3 else []

    rows = _wait("the garbage kept", kept, timeout=30)
    assert [r["why"] for r in rows] == ["not a log line Postfix writes"] * 3
    count = "grep -c 'event=maillog_garbage' /var/log/relayops/maillog.log"
    status, out, _ = loop.lab.run("relay2", f"cat /run/relayops/maillog.pid; {count}")
    assert out.split()[0] == pid and int(out.split()[1]) >= 3, out
    after = _status(operator, "initech", rules)
    assert {k: after[k] for k in ("hard_bounces", "soft_bounces", "blocks", "suppressed")} == {
        k: before[k] for k in ("hard_bounces", "soft_bounces", "blocks", "suppressed")
    }


def test_the_followers_state_is_not_drift(loop: Deployed, hard_bounce: dict[str, Any]) -> None:
    """positions.json and unparsed.jsonl change with every line read: runtime state, never
    compared (nor is the running follower, but for being up)."""
    status, out, err = loop.lab.run("relay2", "ls /var/lib/relayops/maillog")
    assert status == 0 and "positions.json" in out.split(), (out, err)
    argv = [sys.executable, "-m", "relayops", "drift", "--repo", str(loop.root),
            "--inventory", "lab", "--json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=os.environ)
    report = json.loads(done.stdout)
    assert (done.returncode, report["drift"]) == (0, {}), (done.stdout, done.stderr[-3000:])


# ---- 2. a reputation block never suppresses -------------------------------------------------


def test_reputation_block_is_counted_and_suppresses_nothing(
    loop: Deployed,
    sink: Sink,
    operator: Callable[..., dict[str, Any]],
    rules: Path,
    hard_bounce: dict[str, Any],
) -> None:
    rcpt = f"r-{RUN}@{receivers.BLOCKED_DOMAIN}"
    # The ledger outlives a run (suppressions last 30 days): compare with before.
    before = _status(operator, "initech", rules)
    assert _rcpt_reply(loop, BOUNCER, rcpt) == (250, "")
    dsn = _dsn_to(sink, BOUNCER[2], rcpt)
    assert b"low reputation of the sending IP" in dsn.path.read_bytes()
    replies = sink.send(dsn.path.read_bytes(), to=BOUNCES, sender=BOUNCER[2])
    _accepted(replies)
    outcome = _outcome(loop, replies, rcpt)
    assert (outcome["customer"], outcome["counts"], outcome["suppressed"]) == (
        "initech",
        {"block": 1},
        [],
    )
    row = _status(operator, "initech", rules)
    assert (row["hard_bounces"], row["blocks"], row["suppressed"]) == (
        before["hard_bounces"],
        before["blocks"] + 1,
        before["suppressed"],
    )
    time.sleep(2)  # past the daemon's one-second suppression poll
    assert _rcpt_reply(loop, BOUNCER, rcpt) == (250, "")


# ---- 3. a complaint disables the customer at once; release re-enables -----------------------

COMPLAINT_LIMIT = 60.0  # seconds, issue #10's Show


@pytest.fixture(scope="module")
def complaint(loop: Deployed, sink: Sink) -> dict[str, Any]:
    """Stark sends one message; the ISP host reports it; the next RCPT is probed once a
    second from the moment the report is sent until the 450 (the measured delay)."""
    rcpt = f"c-{RUN}@isp.lab"
    assert _rcpt_reply(loop, COMPLAINED, rcpt) == (250, "")
    arrived = sink.wait_for(lambda a: a.recipient == rcpt, timeout=60)
    started = time.monotonic()
    replies = sink.complain(arrived, to=FEEDBACK)
    _accepted(replies)
    probes = 0
    while True:
        probes += 1
        reply = _rcpt_reply(loop, COMPLAINED, f"probe-{probes}-{RUN}@isp.lab")
        delay = time.monotonic() - started
        if reply[0] != 250 or delay > COMPLAINT_LIMIT + 30:
            break
        time.sleep(1.0)
    print(f"\ncomplaint → 450: {delay:.2f} s, {probes} probe(s), relay {replies.host}")
    return {"rcpt": rcpt, "reply": reply, "delay": delay, "probes": probes, "smtp": replies}


def test_complaint_disables_the_customer_within_60_s(complaint: dict[str, Any]) -> None:
    probe = f"probe-{complaint['probes']}-{RUN}@isp.lab"
    assert complaint["reply"] == (
        450,
        f"4.7.1 <{probe}>: Recipient address rejected: "
        "account stark is temporarily disabled pending complaint review",
    )
    assert complaint["delay"] < COMPLAINT_LIMIT, complaint


def test_complaint_outcome_and_status(
    loop: Deployed,
    complaint: dict[str, Any],
    operator: Callable[..., dict[str, Any]],
    rules: Path,
) -> None:
    outcome = _outcome(loop, complaint["smtp"], complaint["rcpt"])
    assert (outcome["kind"], outcome["feedback_type"], outcome["customer"]) == (
        "complaint",
        "abuse",
        "stark",
    )
    reason = f"spam complaint on {_today()} about a message to {complaint['rcpt']}"
    assert (outcome["disabled"], outcome["suspension_proposed"]) == (reason, None)
    assert outcome["notices"] == ["complaint", "disabled"]  # the copy, then the notice
    row = _status(operator, "stark", rules)
    assert (row["complaints"], row["disabled"]) == (1, reason)
    # Below the minimum volume: the rate is not counted, nothing proposed.
    assert row["accepted"] < MIN_VOLUME and row["rates_counted"] is False, row


def test_release_re_enables_sending_and_is_audited(
    loop: Deployed,
    complaint: dict[str, Any],
    operator: Callable[..., dict[str, Any]],
    rules: Path,
) -> None:
    why = f"reviewed complaint {RUN}: list confirmed opt-in"
    done = operator("release", "stark", "--reason", why)
    assert (done["ok"], done["customer"], done["released"]) == (True, "stark", True)
    assert _rcpt_reply(loop, COMPLAINED, f"after-{RUN}@isp.lab") == (250, "")
    row = _status(operator, "stark", rules)
    assert row["disabled"] is None
    assert [(e["action"], e["why"]) for e in row["audit"][:2]] == [
        ("released", why),
        ("disabled", f"spam complaint on {_today()} about a message to {complaint['rcpt']}"),
    ]
    assert row["audit"][0]["who"]  # the operator's name
    again = operator("release", "stark", "--reason", why, check=False)
    assert again["_exit"] == 1  # not disabled any more


def test_original_complaint_reaches_the_contacts_inbox(
    sink: Sink, complaint: dict[str, Any]
) -> None:
    copy = sink.wait_for(lambda a: a.recipient == CONTACT, timeout=60)
    raw = copy.path.read_bytes()
    assert b"Feedback-Type: abuse" in raw and complaint["rcpt"].encode() in raw


# The complaint copy in the customer's IMAP mailbox (imaplib over 993 with the lab CA) and
# the DKIM/SPF/DMARC verification of every notice kind: test_notices_delivered.py.


# ---- 4. complaints past the minimum volume: the suspension proposal ----------------------


def test_complaint_rate_past_minimum_volume_proposes_suspension(
    loop: Deployed,
    sink: Sink,
    operator: Callable[..., dict[str, Any]],
    rules: Path,
    tmp_path: Path,
) -> None:
    rcpts = tuple(f"v{i}-{RUN}@isp.lab" for i in range(MIN_VOLUME))
    customer, login, sender = BREACHING
    _, refused = send(loop, RELAY[customer], login, sender, rcpts)
    assert refused == {}
    arrived = sink.wait_for(lambda a: a.recipient == rcpts[0], timeout=60)
    try:
        _accepted(sink.complain(arrived, to=FEEDBACK))
        figures = (
            f"1 complaints for {MIN_VOLUME} accepted recipients over 2 day(s), "
            "above the ceiling of 1 per 3000"
        )
        row = _wait(
            "soylent's complaint",
            lambda: (r := _status(operator, "soylent", rules))["complaints"] == 1 and r,
        )
        assert (row["accepted"], row["complaint_breach"]) == (MIN_VOLUME, True)
        assert row["audit"][0]["action"] == "suspension-proposed"
        assert row["audit"][0]["why"] == f"complaint rate: {figures}"
        out = operator("propose", "--repo", str(loop.root), "--out", str(tmp_path))
        mine = [p for p in out["proposed"] if p["customer"] == "soylent"]
        assert [p["customer"] for p in out["proposed"]].count("stark") == 0
        assert len(mine) == 1, out
        patch = Path(mine[0]["patch"]).read_text()
        assert "+status: suspended\n" in patch, patch
        assert f"complaint rate: {figures}" in " ".join(
            line[1:].strip() for line in patch.splitlines() if line.startswith("+")
        ), patch
        assert f"+status_date: {_today()}\n" in patch, patch
        check = subprocess.run(
            ["git", "apply", "--check", "-p1", mine[0]["patch"]],
            cwd=loop.root,
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
    finally:
        operator("release", "soylent", "--reason", f"e2e {RUN} done", check=False)


# ---- 5. garbage at the feedback address: kept for review, nobody suspended --------------------


def _forged_claim(raw: bytes, customer: str) -> bytes:
    """The stored message with its stamp's customer rewritten: the MAC no longer matches."""
    text = raw.decode("utf-8", "surrogateescape")
    forged, n = re.subn(r"(X-Relayops-Trace: v=1; c=)[a-z0-9-]+", rf"\g<1>{customer}", text)
    assert n == 1, text[:2000]
    return forged.encode("utf-8", "surrogateescape")


def _report_about(raw: bytes, marker: str) -> bytes:
    facts = arf.reported(raw)
    when = dt.datetime.now(dt.UTC)
    return arf.complaint(
        facts,
        style="arf",
        reporter=REPORTER,
        to=FEEDBACK,
        date=when,
        message_id=f"<{marker}@isp.lab>",
    )


@pytest.mark.parametrize("case", ["random-bytes", "never-sent", "claims-another-customer"])
def test_garbage_is_kept_and_suspends_nobody(
    loop: Deployed,
    sink: Sink,
    operator: Callable[..., dict[str, Any]],
    rules: Path,
    complaint: dict[str, Any],
    case: str,
) -> None:
    marker = f"garbage-{case}-{RUN}"
    stored = sink.wait_for(lambda a: a.recipient == complaint["rcpt"], timeout=10)
    if case == "random-bytes":
        noise = bytes(b for b in os.urandom(6000) if b not in b"\x00\r\n")
        data = noise[:3000] + f"\r\n{marker}\r\n".encode() + noise[3000:]
        why = "no X-Relayops-Trace stamp (not a message we can attribute)"
    elif case == "never-sent":
        # A message from a customer's domain that never went through a relay (no stamp).
        raw = stored.path.read_bytes()
        text = raw.decode("utf-8", "surrogateescape")
        text = re.sub(
            r"(?m)^(X-Relayops-Trace|Feedback-ID|DKIM-Signature):.*\n(?:[ \t].*\n)*", "", text
        )
        data = _report_about(text.replace(complaint["rcpt"], f"{marker}@isp.lab").encode(), marker)
        why = "no X-Relayops-Trace stamp (not a message we can attribute)"
    else:
        data = _report_about(_forged_claim(stored.path.read_bytes(), "wayne"), marker)
        why = "unverified X-Relayops-Trace stamp naming 'wayne'"
    replies = sink.send(data, to=FEEDBACK, sender=REPORT_SENDER)
    _accepted(replies)
    outcome = _outcome(loop, replies, marker)
    assert (outcome["customer"], outcome["why"], outcome["counts"]) == (None, why, {})
    assert (outcome["disabled"], outcome["suspension_proposed"], outcome["notices"]) == (
        None,
        None,
        [],
    )
    assert outcome["spooled"].startswith(f"{SPOOL}/") and outcome["spooled"].endswith(".eml")
    for customer in ("wayne", "stark"):
        assert _status(operator, customer, rules)["disabled"] is None
    assert _rcpt_reply(loop, BYSTANDER, f"still-{case}-{RUN}@isp.lab") == (250, "")
