"""`relayops redis-passwords`: encrypted passwords, kept unless rotated."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from relayops.cli import cli
from relayops.compile.dkim import decrypt_secret


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["redis-passwords", *args], prog_name="relayops")
    return result.exit_code, result.output


def test_missing_passwords_are_made_and_kept(example_repo: Path) -> None:
    identity = example_repo / "lab" / "age-identity.lab-only.txt"
    secrets = example_repo / "secrets" / "redis"
    before = {p.name: p.read_bytes() for p in secrets.iterdir()}
    assert sorted(before) == [
        "relayops-policyd.password.age",
        "relayops-replica.password.age",
        "relayops-sentinel.password.age",
    ]
    assert run("--repo", str(example_repo)) == (0, "every Redis user has a password\n")
    (secrets / "relayops-replica.password.age").unlink()
    code, out = run("--repo", str(example_repo), "--json")
    assert code == 0
    report = json.loads(out)
    assert next(iter(report)) == "ok" and report["written"] == [
        "secrets/redis/relayops-replica.password.age"
    ]
    plain = decrypt_secret(secrets / "relayops-replica.password.age", identity)
    assert len(plain) == 44 and plain.endswith(b"\n")  # 32 random bytes, URL-safe base64
    old = (secrets / "relayops-policyd.password.age").read_bytes()
    assert old == before["relayops-policyd.password.age"]
    code, out = run("--repo", str(example_repo), "--rotate", "relayops-policyd")
    assert (code, out) == (0, "secrets/redis/relayops-policyd.password.age (encrypted)\n")
    assert (secrets / "relayops-policyd.password.age").read_bytes() != old


def test_without_recipients_it_says_what_to_do(example_repo: Path) -> None:
    (example_repo / "secrets" / "recipients.txt").unlink()
    (example_repo / "secrets" / "redis" / "relayops-policyd.password.age").unlink()
    code, out = run("--repo", str(example_repo))
    assert code == 2
    assert out.startswith("relayops redis-passwords: ")
    assert "secrets/recipients.txt is missing: list the age public keys" in out
