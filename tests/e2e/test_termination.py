"""Terminating a customer removes its data from the relays, once its mail has left them.

stark (pool shared-eu, on both relays) is terminated in a copy of the example
repository. relay1 still holds one of stark's messages (held in the queue), relay2
none: relay2 loses stark's DKIM keys and mailboxes at once, relay1 defers and says
so, and removes them on the deploy after the queue is empty. Other customers' keys
and mailboxes stay, and their mail is still signed and delivered.
"""

from __future__ import annotations

import imaplib
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.mailflow import send, wait_all, write_yaml_change
from relayops.deploy.manifest import MANIFEST_PATH
from relayops.deploy.report import summary
from relayops.lab.demo import lab_password
from support.deployed import EXAMPLE, Deployed, copy_example, publish_and_deploy
from support.lab import Lab

pytestmark = pytest.mark.lab

STARK_DOMAINS = ("stark-shipping.example", "stark.example", "starkfreight.example")
STARK_KEYS = [f"/etc/opendkim/keys/{d}/s1.private" for d in STARK_DOMAINS]
STARK_KEY_DIRS = [f"/etc/opendkim/keys/{d}" for d in STARK_DOMAINS]
ACME_KEY = "/etc/opendkim/keys/acme.example/rly2026.private"
UMBRELLA_KEY = "/etc/opendkim/keys/umbrella.example/u2026.private"
# Postfix cannot resolve this domain (the lab DNS refuses it): the message stays queued.
NOWHERE = "nobody@nowhere.invalid-tld-relayops"


def on_host(lab: Lab, relay: str, path: str) -> Path:
    """The path inside the relay's overlay root, as seen from this machine."""
    return lab.topology.root(lab.host(relay)) / path.lstrip("/")


def manifest_paths(lab: Lab, relay: str) -> set[str]:
    data = json.loads(on_host(lab, relay, MANIFEST_PATH).read_text())
    return {entry["path"] for entry in data["entries"]}


def make_mailbox(deployed: Deployed, relay: str, login: str) -> None:
    """Log in over IMAPS and store one message: Dovecot creates the Maildir of the
    login's customer (one mailbox per customer, every login reads it)."""
    context = ssl.create_default_context(cafile=str(deployed.ca_file))
    address = deployed.lab.host(relay).address
    with imaplib.IMAP4_SSL(address, 993, ssl_context=context) as imap:
        imap.login(login, lab_password(EXAMPLE, login))
        status, _ = imap.append(
            "INBOX", None, None, b"Subject: kept until termination\r\n\r\nnotice\r\n"
        )
        assert status == "OK"


def queue_held(lab: Lab, relay: str, sender: str) -> tuple[str, str]:
    """Queue one message from `sender` on the relay and hold it there, in whichever Postfix
    instance has it by then (the submission instance hands it to the sender's output
    instance at once): (instance, queue id)."""
    status, _, err = lab.run(
        relay, f"printf 'Subject: held\\n\\nx\\n' | sendmail -f {sender} {NOWHERE}"
    )
    assert status == 0, err
    _, listed, _ = lab.run(relay, "postmulti -l")
    instances = [line.split()[0] for line in listed.splitlines() if line.strip()]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for instance in instances:
            _, out, _ = lab.run(relay, f"postmulti -i {instance} -x postqueue -j")
            for line in out.splitlines():
                message = json.loads(line)
                if message["sender"] == sender:
                    held = f"postmulti -i {instance} -x postsuper -h {message['queue_id']}"
                    status, _, err = lab.run(relay, held)
                    assert status == 0, err
                    return instance, str(message["queue_id"])
        time.sleep(0.5)
    raise AssertionError(f"no message from {sender} appeared in {relay}'s queues")


def postmap_finds(lab: Lab, relay: str, key: str, table: str) -> bool:
    status, _, _ = lab.run(relay, f"postmap -q {key} hash:{table}")
    return status == 0


@pytest.fixture
def terminated_stark(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "repo")
    write_yaml_change(
        root,
        "customers/stark.yaml",
        "plan: starter\n",
        "status: terminated\nstatus_reason: contract ended\nstatus_date: 2026-11-30\n"
        "plan: starter\n",
    )
    return root


@pytest.fixture
def held(deployed: Deployed) -> Iterator[list[tuple[str, str]]]:
    """Queue ids held on relay1 by the test; deleted afterwards whatever happened, with the
    mailbox the test gave acme-app (the lab is left as the example deploy leaves it)."""
    ids: list[tuple[str, str]] = []
    yield ids
    for instance, queue_id in ids:
        gone = f"postmulti -i {instance} -x postsuper -d {queue_id} 2>/dev/null; true"
        deployed.lab.run("relay1", gone)
    deployed.lab.run("relay1", "rm -rf /var/vmail/acme")


def test_termination_waits_for_queued_mail_then_removes_keys_and_mailboxes(
    deployed: Deployed,
    terminated_stark: Path,
    held: list[tuple[str, str]],
    example_afterwards: None,
) -> None:
    lab = deployed.lab
    publish_and_deploy(lab, EXAMPLE)  # the example, deployed by this engine: its manifest
    for relay, login, customer in (
        ("relay1", "stark", "stark"),
        ("relay2", "stark-ci", "stark"),
        ("relay1", "acme-app", "acme"),
    ):
        make_mailbox(deployed, relay, login)
        assert on_host(lab, relay, f"/var/vmail/{customer}/Maildir").is_dir()
    for relay in ("relay1", "relay2"):
        assert {*STARK_KEYS, "/var/vmail/stark"} <= manifest_paths(lab, relay)
    held.append(queue_held(lab, "relay1", "billing@stark.example"))

    # 1. Terminated while relay1 still holds stark's message: relay2 removes, relay1 waits.
    first = publish_and_deploy(lab, terminated_stark).result.output
    for path in STARK_KEYS:
        assert (
            f"[relay1.relay.example.net] removal deferred: file {path} "
            "(1 message(s) of stark still queued)"
        ) in first
    assert (
        "[relay1.relay.example.net] removal deferred: mailbox /var/vmail/stark "
        "(1 message(s) of stark still queued)"
    ) in first
    assert "[relay2.relay.example.net] removal deferred" not in first
    deferred = summary(first)["deferred"]  # as `relayops deploy --json` reports it
    assert list(deferred) == ["relay1.relay.example.net"]
    # One mailbox per customer, whichever of its logins made it.
    wait = " (1 message(s) of stark still queued)"
    assert deferred["relay1.relay.example.net"] == [
        *(f"file {p}{wait}" for p in STARK_KEYS),
        f"mailbox /var/vmail/stark{wait}",
        *(f"directory {p}{wait}" for p in STARK_KEY_DIRS),
    ]
    for path in [*STARK_KEYS, *STARK_KEY_DIRS, "/var/vmail/stark"]:
        assert on_host(lab, "relay1", path).exists(), path
        assert path in manifest_paths(lab, "relay1")  # still listed: a later deploy removes it
    assert on_host(lab, "relay1", "/var/vmail/stark/Maildir").is_dir()
    for path in [*STARK_KEYS, *STARK_KEY_DIRS, "/var/vmail/stark"]:
        assert not on_host(lab, "relay2", path).exists(), path
        assert path not in manifest_paths(lab, "relay2")

    # The maps lose stark's entries by being rendered again, on both relays at once.
    for relay in ("relay1", "relay2"):
        for domain in STARK_DOMAINS:
            assert not postmap_finds(lab, relay, f"@{domain}", "/etc/postfix/sender_logins")
            signing = on_host(lab, relay, "/etc/opendkim/SigningTable").read_text()
            assert domain not in signing
        users = on_host(lab, relay, "/etc/dovecot/relayops-users").read_text()
        assert "stark" not in users
        # Other customers keep their keys, maps and mail.
        assert on_host(lab, relay, ACME_KEY).is_file()
        assert on_host(lab, relay, UMBRELLA_KEY).is_file()
        assert postmap_finds(lab, relay, "@acme.example", "/etc/postfix/sender_logins")
    assert on_host(lab, "relay1", "/var/vmail/acme/Maildir").is_dir()

    # 2. Still queued: a redeploy still waits, and changes nothing else.
    again = publish_and_deploy(lab, terminated_stark).result.output
    assert "removal deferred: mailbox /var/vmail/stark (1 message(s)" in again
    assert "--> Starting operation" not in again, again[-3000:]

    # 3. The queue is empty: the next deploy removes stark's data from relay1 too.
    instance, queue_id = held.pop()
    status, _, err = lab.run("relay1", f"postmulti -i {instance} -x postsuper -d {queue_id} hold")
    assert status == 0, err
    last = publish_and_deploy(lab, terminated_stark).result.output
    assert "removal deferred" not in last
    assert "Remove mailbox of stark /var/vmail/stark" in last
    for path in [*STARK_KEYS, *STARK_KEY_DIRS, "/var/vmail/stark"]:
        assert not on_host(lab, "relay1", path).exists(), path
        assert path not in manifest_paths(lab, "relay1")
    assert on_host(lab, "relay1", "/var/vmail/acme/Maildir").is_dir()
    assert on_host(lab, "relay1", ACME_KEY).is_file()

    # Nothing left to do; another customer's mail is still signed and delivered.
    settled = publish_and_deploy(lab, terminated_stark).result.output
    assert "--> Starting operation" not in settled, settled[-3000:]
    subject, refused = send(deployed, "relay1", "acme-app", "a@acme.example", ("t@isp.lab",))
    assert refused == {}
    wait_all(lab.sink, [subject])
    delivered = next(a for a in lab.sink.messages() if str(a.message["Subject"]) == subject)
    assert "d=acme.example" in str(delivered.message["DKIM-Signature"])
