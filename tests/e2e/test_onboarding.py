"""Onboarding by commands only, then mail: the new customer's message arrives DKIM-signed.

On a Git copy of the example repository: `relayops customer new`, `add-domain` and
`add-login` (the password it prints once is the only copy there is), then `relayops
plan` against the commit before. The change is exactly three new files — the customer
file, whose content is the onboarding golden file (tests/customer/test_onboard_golden.py
proves the same commands' output line by line), and the domain's key pair — and no
tracked file is touched. The lab is then deployed from that working tree and the new
login sends through relay1; the message that reaches the ISP host is verified with
dkimpy against the lab DNS, independently of the project's own check code.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner

from customer.test_onboard_golden import GOLDEN, HASH, MASK, PASSWORD_LINE
from e2e.mailflow import SUBMISSION, wait_all
from relayops.cli import cli
from relayops.lab.mail import Submission, lab_dnsfunc, message, submit, token
from support.deployed import Deployed, copy_example, publish_and_deploy

pytestmark = pytest.mark.lab

CUSTOMER, DOMAIN, SELECTOR, LOGIN = "newco", "newco.example", "n1", "newco-app"
HOST_FILES = [
    "/etc/dovecot/relayops-mailboxes",  # the customer's notice mailbox, read by its logins
    "/etc/dovecot/relayops-users",
    "/etc/opendkim/KeyTable",
    "/etc/opendkim/SigningTable",
    f"/etc/opendkim/keys/{DOMAIN}/{SELECTOR}.private",
    "/etc/postfix/mailboxes",  # where its notices are delivered (LMTP)
    "/etc/postfix/sender_logins",
    "/etc/relayops/policy.json",
]


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


def relayops(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--repo", str(root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def onboard(root: Path) -> str:
    """The three commands of docs/customers.md; the login's password, as printed once."""
    relayops(
        root, "customer", "new", CUSTOMER, "--name", "NewCo Ltd", "--contact",
        f"ops@{DOMAIN}", "--plan", "business", "--timezone", "Europe/Berlin",
        "--pool", "shared-eu",
    )  # fmt: skip
    relayops(root, "customer", "add-domain", CUSTOMER, DOMAIN, "--selector", SELECTOR,
             "--inventory", "lab")  # fmt: skip
    printed = relayops(root, "customer", "add-login", CUSTOMER, LOGIN)
    found = PASSWORD_LINE.search(printed)
    assert found is not None, printed
    return found.group(1)


def test_onboarded_by_commands_the_new_login_sends_dkim_signed_mail(
    tmp_path: Path, deployed: Deployed, example_afterwards: None
) -> None:
    root = copy_example(tmp_path / "repo")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=Operator", "-c", "user.email=ops@example.net",
        "commit", "-q", "-m", "the example")  # fmt: skip

    password = onboard(root)

    # The diff is only the change: three new files, no tracked file touched.
    assert git(root, "status", "--porcelain", "--untracked-files=all").splitlines() == [
        f"?? customers/{CUSTOMER}.yaml",
        f"?? secrets/dkim/{DOMAIN}.{SELECTOR}.key.age",
        f"?? secrets/dkim/{DOMAIN}.{SELECTOR}.pub.pem",
    ]
    text = (root / "customers" / f"{CUSTOMER}.yaml").read_text(encoding="utf-8")
    hashes = HASH.findall(text)
    assert len(hashes) == 1 and password not in text
    assert text.replace(hashes[0], MASK) == (GOLDEN / "3-add-login.yaml").read_text()

    # The plan a reviewer reads: the customer, the records to publish first, the files.
    plan = relayops(root, "plan", "--inventory", "lab", "--base", "HEAD", "--json")
    report = json.loads(plan)
    assert report["customers"] == [
        {
            "customer": CUSTOMER,
            "kind": "added",
            "detail": "NewCo Ltd: plan business, 10000/day, 1 domain(s), 1 login(s), status active",
        }
    ]
    assert [(d["domain"], [r["name"] for r in d["records"]]) for d in report["dns"]] == [
        (DOMAIN, [f"_dmarc.{DOMAIN}", f"{SELECTOR}._domainkey.{DOMAIN}", DOMAIN])
    ]
    assert [r["kind"] for r in report["risks"]] == ["DNS to publish before merge"]
    assert {h["host"]: [c["path"] for c in h["changes"]] for h in report["hosts"]} == {
        "relay1.relay.example.net": HOST_FILES,
        "relay2.relay.example.net": HOST_FILES,
    }

    # Deployed from that working tree (its DNS records published in the lab first).
    lab = deployed.lab
    publish_and_deploy(lab, root)
    subject = f"onboarding {token()}"
    sender, recipient = f"billing@{DOMAIN}", "onboarding@isp.lab"
    submission = Submission(
        relay=lab.host("relay1").address,
        port=SUBMISSION,
        login=LOGIN,
        password=password,
        sender=sender,
        recipients=(recipient,),
        ca_file=deployed.ca_file,
    )
    assert submit(submission, message(sender, (recipient,), subject, "first message\n")) == {}
    wait_all(lab.sink, [subject])
    arrived = [a for a in lab.sink.messages() if str(a.message["Subject"]) == subject]
    assert len(arrived) == 1
    raw = arrived[0].path.read_bytes()
    verifier = dkim.DKIM(raw)
    assert verifier.verify(dnsfunc=lab_dnsfunc(lab.topology.dns.address)) is True
    assert (verifier.domain, verifier.selector) == (DOMAIN.encode(), SELECTOR.encode())
    signature = str(arrived[0].message["DKIM-Signature"])
    assert re.search(rf"\bd={re.escape(DOMAIN)};", signature), signature
