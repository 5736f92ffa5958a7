"""Each case: a small repository (repo/) and the host trees it must compile to (expected/).

A reviewer reads the expected/ diff of a change; `--update-golden` regenerates it.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from relayops.compile import HostConfig, compile_inventory
from relayops.compile.render import MANIFEST_SUFFIX, read_tree, write_hosts
from relayops.compile.toolcheck import check_host
from relayops.loader import load_repo
from relayops.policyd.notices import KINDS as NOTICE_KINDS
from relayops.policyd.rules import load_rules

HERE = Path(__file__).resolve().parent
CASES = sorted(p.name for p in HERE.iterdir() if (p / "repo").is_dir())
TODAY = date(2026, 11, 23)  # the validator's clock for dated rules (IP quarantine)


def compiled(case: str) -> dict[str, HostConfig]:
    result = load_repo(HERE / case / "repo", today=TODAY)
    assert result.repo is not None, "\n".join(map(str, result.findings))
    return compile_inventory(result.repo, result.repo.inventories["production"])


def rendered(out: Path) -> dict[str, bytes]:
    """Every file under a render output, keyed by its path relative to `out`."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_at_least_six_cases() -> None:
    assert len(CASES) >= 6, CASES


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, tmp_path: Path, update_golden: bool) -> None:
    expected_dir = HERE / case / "expected"
    configs = compiled(case)
    if update_golden:
        shutil.rmtree(expected_dir, ignore_errors=True)
        write_hosts(configs, expected_dir)
        return
    write_hosts(configs, tmp_path)
    actual, expected = rendered(tmp_path), rendered(expected_dir)
    assert sorted(actual) == sorted(expected), "file set differs: run pytest --update-golden"
    for name in sorted(actual):
        if actual[name] != expected[name]:
            diff = "".join(
                difflib.unified_diff(
                    expected[name].decode().splitlines(keepends=True),
                    actual[name].decode().splitlines(keepends=True),
                    f"expected/{name}",
                    f"actual/{name}",
                )
            )
            pytest.fail(f"{case}: {name} differs (pytest --update-golden to accept):\n{diff}")


@pytest.mark.parametrize("case", CASES)
def test_golden_holds_no_private_key(case: str) -> None:
    for path in (HERE / case / "expected").rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path


@pytest.mark.parametrize("case", CASES)
def test_compile_is_deterministic(case: str) -> None:
    first, second = compiled(case), compiled(case)
    assert first == second


@pytest.mark.real
@pytest.mark.parametrize("case", CASES)
def test_real_tools_accept_every_host(case: str, tmp_path: Path) -> None:
    """postfix check, postconf -n, opendkim -n and doveconf -n: no error, no warning."""
    for name, config in compiled(case).items():
        scratch = tmp_path / name
        scratch.mkdir()
        for result in check_host(config, scratch):
            assert result.ok, f"{case}/{name}: {' '.join(result.command)}:\n{result.output}"


def test_manifest_lists_secrets_with_their_encrypted_source() -> None:
    manifest = HERE / "dedicated-ip/expected" / ("relay1.relay.example.net" + MANIFEST_SUFFIX)
    text = manifest.read_text()
    assert "secrets/dkim/dedi.example.d2026.key.age" in text
    assert '"mode": "0600"' in text


def test_read_tree_maps_host_paths(tmp_path: Path) -> None:
    write_hosts(compiled("shared-pool"), tmp_path)
    tree = read_tree(tmp_path / "relay1.relay.example.net")
    assert "/etc/postfix/main.cf" in tree


# The fields docs/policy-json.md defines, no more, no less.
CONTRACT_CUSTOMER_FIELDS = {
    "name", "status", "status_reason", "timezone", "daily_quota", "warn_ratio",
    "max_message_bytes", "contact", "logins", "domains", "warmup",
    "plan", "from_subdomains", "campaigns", "campaign_recipients",
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_policy_json_is_read_by_the_policy_daemon(case: str) -> None:
    """The contract, checked from both ends: our output, the daemon's own loader."""
    for policy in sorted((HERE / case / "expected").glob("*/etc/relayops/policy.json")):
        data = json.loads(policy.read_text())
        # recipient_classes only where a warm-up caps an ISP class (compile/policy.py)
        assert set(data) - {"recipient_classes"} == {
            "schema_version",
            "service",
            "customers",
            "notifications",
            "antispam",
        }
        assert set(data["service"]) == {"name", "domain", "notify_from", "mailbox_domain"}
        assert set(data["notifications"]) == set(NOTICE_KINDS)
        for customer in data["customers"].values():
            assert set(customer) == CONTRACT_CUSTOMER_FIELDS
        assert policy.read_text() == json.dumps(data, indent=2, sort_keys=True) + "\n"
        rules = load_rules(policy)
        assert set(rules.customers) == set(data["customers"])
        for cid, customer in data["customers"].items():
            for login in customer["logins"]:
                assert rules.by_login[login].id == cid


_DIGEST_SCRIPT = """\
import hashlib, sys
from datetime import date
from pathlib import Path
from relayops.compile import compile_inventory
from relayops.loader import load_repo
today = date.fromisoformat(sys.argv[1])
for case in sys.argv[2:]:
    repo = load_repo(Path(case), today=today).repo
    digest = hashlib.sha256()
    for name, config in compile_inventory(repo, repo.inventories["production"]).items():
        digest.update(repr((name, config)).encode())
    print(digest.hexdigest())
"""


def _compile_digests_in_a_process(seed: str) -> list[str]:
    src = HERE.parent.parent / "src"
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(src)}
    cases = [str(HERE / case / "repo") for case in CASES]
    return subprocess.run(
        [sys.executable, "-c", _DIGEST_SCRIPT, TODAY.isoformat(), *cases],
        capture_output=True, text=True, check=True, env=env, timeout=300,
    ).stdout.split()  # fmt: skip


def test_compile_is_the_same_in_every_process() -> None:
    """test_compile_is_deterministic compares within one process, where set and dict
    order repeat; separate interpreters with other hash seeds must agree too."""
    first = _compile_digests_in_a_process("0")
    assert len(first) == len(CASES)
    assert _compile_digests_in_a_process("4242") == first
