"""A generated Git history of a small policy repository, for the audit tests.

Seven first-parent commits (six listed), every date and author fixed, so everything but the
commit ids and the SSH key fingerprints is the same on every run:

1. 2026-01-05 Alice   "Initial policy"            plans, acme, initech, umbrella (unsigned)
2. 2026-01-11 Alice   "Rename umbrella"           umbrella.yaml -> umbrella-health.yaml
3. 2026-01-12 Carol   "Merge pull request #12 …"  Bob's branch: suspend initech, rotate
                                                   acme's second selector, reorder its users
4. 2026-02-01 Dave    "Raise acme quota (#13)"    quota_override 12000, SSH-signed (trusted)
5. 2026-02-15 Alice   "Remove initech"            initech deleted, starter quota 1000 -> 1500
-  2026-02-18 Alice   "Docs only"                 no policy file: not listed
6. 2026-02-20 Eve     "Add typo customer"         an unparseable file, SSH-signed by a key
                                                   not in the allowed signers (bad)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

AUTHORS = {
    "alice": ("Alice Admin", "alice@relay.example.net"),
    "bob": ("Bob Builder", "bob@relay.example.net"),
    "carol": ("Carol Merger", "carol@relay.example.net"),
    "dave": ("Dave Sales", "dave@relay.example.net"),
    "eve": ("Eve Intern", "eve@relay.example.net"),
}
# The squash commit lands at this instant: --at tests sit on both sides of it.
QUOTA_RAISED_AT = "2026-02-01T12:00:00+00:00"


@dataclass(frozen=True)
class History:
    repo: Path
    allowed_signers: Path
    trusted_key: Path
    untrusted_key: Path


def _git(repo: Path, *args: str, who: str = "alice", when: str = "") -> str:
    name, email = AUTHORS[who]
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo.parent),
    }
    if when:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when
    result = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def _keygen(path: Path, comment: str) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )
    return path


def build(base: Path, *, signers_in_config: bool = True) -> History:
    """The history above in `base/repo`; the allowed signers file in `base/allowed_signers`."""
    repo = base / "repo"
    (repo / "customers").mkdir(parents=True)
    (repo / "policies").mkdir()
    trusted = _keygen(base / "dave_key", "dave")
    untrusted = _keygen(base / "eve_key", "eve")
    allowed = base / "allowed_signers"
    allowed.write_text(f"dave@relay.example.net {trusted.with_suffix('.pub').read_text()}")
    _git(repo, "init", "-q", "-b", "main")
    if signers_in_config:
        _git(repo, "config", "gpg.ssh.allowedSignersFile", str(allowed))

    shutil.copy(ROOT / "policies" / "plans.yaml", repo / "policies" / "plans.yaml")
    for cid in ("acme", "initech", "umbrella"):
        shutil.copy(ROOT / "customers" / f"{cid}.yaml", repo / "customers" / f"{cid}.yaml")
    (repo / "README.md").write_text("policy\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Initial policy", when="2026-01-05T09:00:00+00:00")

    # Bob's pull request, branched from the initial commit
    _git(repo, "switch", "-q", "-c", "bob/initech")
    initech = repo / "customers" / "initech.yaml"
    _edit(
        initech,
        "plan: starter\n",
        "status: suspended\nstatus_reason: invoice unpaid for 30 days\n"
        "status_date: 2026-01-09\nplan: starter\n",
    )
    _git(repo, "commit", "-q", "-am", "Suspend initech", who="bob", when="2026-01-09T15:00:00Z")
    acme = repo / "customers" / "acme.yaml"
    _edit(
        acme,
        "  - name: acme-mail.example\n    dkim: {selector: rly2026}",
        "  - name: acme-mail.example\n    dkim: {selector: rly2027}",
    )
    lines = acme.read_text().splitlines(keepends=True)
    users = lines.index("users:\n")
    acme.write_text(
        "".join(
            lines[: users + 1]
            + lines[users + 3 : users + 5]
            + lines[users + 1 : users + 3]
            + lines[users + 5 :]
        )
    )
    _git(
        repo,
        "commit",
        "-q",
        "-am",
        "Rotate acme-mail selector",
        who="bob",
        when="2026-01-10T10:00:00Z",
    )

    _git(repo, "switch", "-q", "main")
    _git(repo, "mv", "customers/umbrella.yaml", "customers/umbrella-health.yaml")
    _git(repo, "commit", "-q", "-m", "Rename umbrella", when="2026-01-11T08:00:00Z")
    _git(
        repo,
        "merge",
        "-q",
        "--no-ff",
        "bob/initech",
        "-m",
        "Merge pull request #12 from bob/initech",
        who="carol",
        when="2026-01-12T16:30:00Z",
    )

    _edit(acme, "placement:\n", "quota_override: 12000\nplacement:\n")
    _git(repo, "add", "-A")
    _git(
        repo,
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={trusted}",
        "commit",
        "-q",
        "-S",
        "-m",
        "Raise acme quota (#13)",
        who="dave",
        when=QUOTA_RAISED_AT,
    )

    _git(repo, "rm", "-q", "customers/initech.yaml")
    _edit(repo / "policies" / "plans.yaml", "daily_quota: 1000\n", "daily_quota: 1500\n")
    (repo / "README.md").write_text("policy, not audited\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Remove initech", when="2026-02-15T09:00:00Z")

    (repo / "README.md").write_text("policy, documented\n")
    _git(repo, "commit", "-q", "-am", "Docs only", when="2026-02-18T09:00:00Z")

    (repo / "customers" / "typo.yaml").write_text("name: [unclosed\n")
    _git(repo, "add", "-A")
    _git(
        repo,
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={untrusted}",
        "commit",
        "-q",
        "-S",
        "-m",
        "Add typo customer",
        who="eve",
        when="2026-02-20T09:00:00Z",
    )
    return History(repo, allowed, trusted, untrusted)
