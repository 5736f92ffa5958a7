"""`relayops feedback propose`: a recorded breach becomes a patch of customers/<id>.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from relayops.policyd.ledger import AuditEntry, Change
from relayops.policyd.ledger_sqlite import SqliteLedger
from support.repo import copy_example

REASON = (
    "complaint rate: 2 complaints for 5999 accepted recipients over 2 day(s), "
    "above the ceiling of 1 per 3000"
)


def test_a_breach_becomes_a_patch_that_git_applies(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "repo")
    db = tmp_path / "policyd.sqlite"
    ledger = SqliteLedger(db)
    now = datetime.now(UTC)
    entry = AuditEntry(now.timestamp(), "acme", "suspension-proposed", "ingest", REASON)
    ledger.apply(Change("a" * 64, "acme", now.date(), audit=(entry,)))
    gone = AuditEntry(now.timestamp(), "nosuch", "suspension-proposed", "ingest", REASON)
    ledger.apply(Change("b" * 64, "nosuch", now.date(), audit=(gone,)))
    ledger.close()
    before = (repo / "customers/acme.yaml").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "relayops", "feedback", "propose", "--json",
         "--repo", str(repo), "--store", f"sqlite:{db}"],
        capture_output=True, check=True,
    )  # fmt: skip
    report = json.loads(done.stdout)
    patch = repo / "proposals" / "acme-suspend.patch"
    assert report["proposed"] == [{"customer": "acme", "reason": REASON, "patch": str(patch)}]
    assert report["skipped"] == ["nosuch: no customers/nosuch.yaml"]
    assert (repo / "customers/acme.yaml").read_text() == before  # proposed, not applied
    subprocess.run(["git", "apply", str(patch)], cwd=repo, check=True)
    after = (repo / "customers/acme.yaml").read_text()
    assert "status: suspended\n" in after
    assert f"status_reason: '{REASON}'" in after or f"status_reason: {REASON}" in after
    assert f"status_date: {now.date().isoformat()}" in after
    check = subprocess.run(
        [sys.executable, "-m", "relayops", "validate", "--repo", str(repo)], capture_output=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_keygen_writes_an_encrypted_key_once(tmp_path: Path) -> None:
    from relayops.compile.dkim import decrypt_secret

    repo = copy_example(tmp_path / "repo")
    (repo / "secrets/trace.key.age").unlink()
    cmd = [sys.executable, "-m", "relayops", "feedback", "keygen", "--repo", str(repo)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, f"wrote {repo}/secrets/trace.key.age\n")
    identity = Path(__file__).parents[2] / "lab/age-identity.lab-only.txt"
    key = decrypt_secret(repo / "secrets/trace.key.age", identity)
    assert len(key.strip()) == 43 and key.endswith(b"\n")  # 32 bytes, base64url
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 1
    assert "exists; replacing it makes every stamp already sent unverifiable" in again.stderr
