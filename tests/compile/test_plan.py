"""`relayops plan --base REF` in a throw-away git repository built from a golden case."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from relayops.compile.cli import dkim, plan
from relayops.compile.dkim import new_identity

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.net",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.net",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The `throttling` golden repository as a git repository with one commit."""
    root = tmp_path / "policy"
    shutil.copytree(GOLDEN / "throttling" / "repo", root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def run_plan(repo: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        plan, ["--repo", str(repo), "--inventory", "production", *args], catch_exceptions=False
    )
    return result.exit_code, result.output


def plan_data(repo: Path, base: str = "HEAD~1") -> dict[str, object]:
    code, out = run_plan(repo, "--base", base, "--json")
    assert code == 0, out
    data: dict[str, object] = json.loads(out)
    return data


def test_one_quota_change_shows_exactly_that(repo: Path) -> None:
    path = repo / "customers/alpha.yaml"
    path.write_text(
        path.read_text().replace("plan: starter\n", "plan: starter\nquota_override: 1200\n")
    )
    commit(repo, "alpha: quota 1200")

    data = plan_data(repo)
    assert data["customers"] == [
        {"customer": "alpha", "kind": "quota", "detail": "1000 → 1200 recipients/day"}
    ]
    assert data["dns"] == [] and data["ips"] == []
    hosts = data["hosts"]
    assert isinstance(hosts, list) and len(hosts) == 1
    changes = hosts[0]["changes"]
    assert [(c["path"], c["change"]) for c in changes] == [("/etc/relayops/policy.json", "changed")]
    assert '-      "daily_quota": 1000,\n+      "daily_quota": 1200,' in changes[0]["diff"]

    code, markdown = run_plan(repo, "--base", "HEAD~1")
    assert code == 0
    assert "| `alpha` | quota | 1000 → 1200 recipients/day |" in markdown
    assert "changed <code>/etc/relayops/policy.json</code>" in markdown
    assert git(repo, "worktree", "list").count("\n") == 1  # the temporary worktree is gone


def test_no_change_against_head(repo: Path) -> None:
    code, out = run_plan(repo, "--base", "HEAD")
    assert code == 0
    assert "No change" in out


def test_new_domain_lists_the_dns_records_to_publish(repo: Path) -> None:
    _secret, public = new_identity()
    (repo / "secrets").mkdir(exist_ok=True)
    (repo / "secrets/recipients.txt").write_text(public + "\n")
    commit(repo, "recipients")
    path = repo / "customers/alpha.yaml"
    path.write_text(
        path.read_text().replace(
            "domains:\n", "domains:\n  - name: shop.alpha.example\n    dkim: {selector: s2027}\n"
        )
    )
    result = CliRunner().invoke(
        dkim, ["generate", "shop.alpha.example", "--selector", "s2027", "--repo", str(repo)]
    )
    assert result.exit_code == 0, result.output
    commit(repo, "alpha: new domain")

    data = plan_data(repo)
    assert {"customer": "alpha", "kind": "domain added", "detail": "shop.alpha.example"} in data[
        "customers"
    ]
    dns = data["dns"]
    assert isinstance(dns, list) and [d["domain"] for d in dns] == ["shop.alpha.example"]
    zone = "\n".join(dns[0]["zone"])
    assert 'shop.alpha.example. IN TXT "v=spf1 include:shared._spf.relay.example.net -all"' in zone
    assert 's2027._domainkey.shop.alpha.example. IN TXT "v=DKIM1; k=rsa; p=MIIB' in zone
    assert '_dmarc.shop.alpha.example. IN TXT "v=DMARC1; p=none' in zone
    changed = {c["path"]: c["change"] for c in data["hosts"][0]["changes"]}
    assert changed["/etc/opendkim/keys/shop.alpha.example/s2027.private"] == "added"
    assert changed["/etc/postfix/sender_logins"] == "changed"
    assert changed["/etc/opendkim/SigningTable"] == "changed"
    assert "PRIVATE KEY" not in json.dumps(data)


def test_suspension_and_new_ip(repo: Path) -> None:
    path = repo / "customers/alpha.yaml"
    path.write_text(
        path.read_text().replace(
            "plan: starter\n",
            "plan: starter\nstatus: suspended\nstatus_reason: unpaid invoice 42\n"
            "status_date: 2026-11-22\n",
        )
    )
    inventory = repo / "inventory/production.py"
    inventory.write_text(
        inventory.read_text().replace(
            '"ptr": "o1.relay.example.net",\n                    },',
            '"ptr": "o1.relay.example.net",\n                    },\n'
            '                    {"name": "shared-2", "address": "192.0.2.30", "pool": "shared",'
            ' "ptr": "o9.relay.example.net"},',
        )
    )
    commit(repo, "suspend alpha, add an IP")
    data = plan_data(repo)
    kinds = {(c["customer"], c["kind"]) for c in data["customers"]}
    assert ("alpha", "suspended") in kinds
    ips = {(r["name"], r["type"], r["value"]) for r in data["ips"]}
    assert ("30.2.0.192.in-addr.arpa", "PTR", "o9.relay.example.net") in ips
    changed = {c["path"] for c in data["hosts"][0]["changes"]}
    assert {"/etc/postfix/sender_logins", "/etc/relayops/policy.json"} <= changed
    # A suspended login still authenticates (and is refused at MAIL FROM with the reason).
    assert "/etc/dovecot/relayops-users" not in changed


def test_invalid_working_tree_exits_2(repo: Path) -> None:
    (repo / "customers/alpha.yaml").write_text("name: [unclosed\n")
    code, _ = run_plan(repo, "--base", "HEAD")
    assert code == 2


def test_unknown_base_ref_exits_2(repo: Path) -> None:
    code, out = run_plan(repo, "--base", "no-such-ref")
    assert code == 2
    assert "no-such-ref" in out


def test_throttling_change_is_summarised_and_touches_the_output_instances_only(
    repo: Path,
) -> None:
    path = repo / "policies/throttling.yaml"
    path.write_text(path.read_text().replace("concurrency: 3", "concurrency: 2"))
    commit(repo, "microsoft: 2 connections")
    data = plan_data(repo)
    assert data["customers"] == []
    assert data["policies"] == [
        {
            "file": "policies/throttling.yaml",
            "item": "microsoft",
            "change": "changed",
            "detail": "concurrency: 3 → 2",
        }
    ]
    host = data["hosts"][0]
    assert [c["path"] for c in host["changes"]] == [
        "/etc/postfix-ip-dedi-1/main.cf",
        "/etc/postfix-pool-shared/main.cf",
    ]
    # Each output instance reloads alone; the submission instance is untouched.
    assert host["services"] == [
        {"service": "postfix@postfix-ip-dedi-1", "action": "reload"},
        {"service": "postfix@postfix-pool-shared", "action": "reload"},
    ]


def test_invalid_base_is_shown_as_empty_with_a_note(repo: Path) -> None:
    good = (repo / "customers/alpha.yaml").read_text()
    (repo / "customers/alpha.yaml").write_text("name: [unclosed\n")
    commit(repo, "broken")
    (repo / "customers/alpha.yaml").write_text(good)
    commit(repo, "fixed")
    data = plan_data(repo)
    notes = data["notes"]
    assert isinstance(notes, list) and "does not validate" in notes[0]
    kinds = {(c["customer"], c["kind"]) for c in data["customers"]}
    assert ("alpha", "added") in kinds
    assert all(c["change"] == "added" for c in data["hosts"][0]["changes"])
    assert git(repo, "worktree", "list").count("\n") == 1


def test_termination_lists_keys_key_directories_and_mailboxes_removed(repo: Path) -> None:
    path = repo / "customers/alpha.yaml"
    path.write_text(
        path.read_text().replace(
            "plan: starter\n",
            "plan: starter\nstatus: terminated\nstatus_reason: contract ended\n"
            "status_date: 2026-11-30\n",
        )
    )
    commit(repo, "terminate alpha")
    data = plan_data(repo)
    host = data["hosts"][0]
    removed = {c["path"]: c["diff"] for c in host["changes"] if c["change"] == "removed"}
    wait = "; once the host's queue holds no mail of alpha\n"
    assert removed == {
        "/etc/opendkim/keys/alpha-news.example/a1.private":
            "secret (was secrets/dkim/alpha-news.example.a1.key.age)" + wait,
        "/etc/opendkim/keys/alpha.example/a1.private":
            "secret (was secrets/dkim/alpha.example.a1.key.age)" + wait,
        "/etc/opendkim/keys/alpha-news.example": "directory, removed when empty" + wait,
        "/etc/opendkim/keys/alpha.example": "directory, removed when empty" + wait,
        "/var/vmail/alpha": "mailbox of alpha, deleted with all its mail" + wait,
    }  # fmt: skip
    code, markdown = run_plan(repo, "--base", "HEAD~1")
    assert code == 0
    assert "<details><summary>removed <code>/var/vmail/alpha</code></summary>" in markdown
