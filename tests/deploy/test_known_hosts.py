"""Pinned host keys: a non-lab deploy refuses to start unless every host has a real key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from relayops.cli import cli
from relayops.deploy.errors import DeployError
from relayops.deploy.known_hosts import known_hosts_file, problems, require_pinned
from relayops.deploy.runner import host_keys, pyinfra_argv, validate

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ["203.0.113.11", "203.0.113.12"]


def key() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def test_real_keys_for_every_host_pass() -> None:
    text = f"# comment\n\n203.0.113.11,relay1.example {key()}\n[203.0.113.12]:22 {key()} c\n"
    assert problems(text, HOSTS) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "203.0.113.12 ssh-ed25519 REPLACE-WITH-relay2-HOST-KEY",
            "line 2 (203.0.113.12): still a placeholder: the operator must put the host's "
            "real key here",
        ),
        ("203.0.113.12 ssh-ed25519 not*base64", "line 2 (203.0.113.12): the key is not base64"),
        ("203.0.113.12 ssh-ed25519 AAA=", "line 2 (203.0.113.12): the key is truncated"),
        ("203.0.113.12 ssh-rsa KEY", "line 2 (203.0.113.12): the key is not of type ssh-rsa"),
    ],
)
def test_a_bad_line_is_named_and_its_host_counts_as_unpinned(line: str, expected: str) -> None:
    good = f"203.0.113.11 {key()}"
    if line.split()[-1] == "KEY":
        line = line.replace("KEY", key().split()[1])  # an ed25519 blob labelled ssh-rsa
    assert problems(f"{good}\n{line}\n", HOSTS) == [expected, "no valid key for 203.0.113.12"]


def test_a_host_on_another_port_is_not_pinned_for_port_22() -> None:
    text = f"203.0.113.11 {key()}\n[203.0.113.12]:2222 {key()}\n"
    assert problems(text, HOSTS) == ["no valid key for 203.0.113.12"]


def test_the_committed_production_file_holds_only_placeholders() -> None:
    text = (ROOT / "inventory/production.known_hosts").read_text()
    assert "OPERATOR" in text
    assert problems(text, HOSTS) == [
        "line 10 (203.0.113.11,relay1.relay.example.net): still a placeholder: the operator "
        "must put the host's real key here",
        "line 11 (203.0.113.12,relay2.relay.example.net): still a placeholder: the operator "
        "must put the host's real key here",
        "no valid key for 203.0.113.11",
        "no valid key for 203.0.113.12",
    ]


def test_missing_file_refuses(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"production.known_hosts is missing: pin the hosts"):
        require_pinned(tmp_path / "production.known_hosts", HOSTS)


def test_production_deploy_refuses_with_placeholder_keys(example_repo: Path) -> None:
    shutil.copy2(ROOT / "inventory/production.known_hosts", example_repo / "inventory")
    inventory = str(example_repo / "inventory/production.py")
    result = CliRunner().invoke(
        cli, ["deploy", "--repo", str(example_repo), "--inventory", inventory, "--dry"]
    )
    assert result.exit_code == 2
    assert "production.known_hosts: host keys are not pinned:" in result.output
    assert "no valid key for 203.0.113.11" in result.output


def test_production_uses_the_pinned_file_strictly(example_repo: Path) -> None:
    inventory = example_repo / "inventory/production.py"
    pinned = known_hosts_file(inventory)
    pinned.write_text(f"203.0.113.11 {key()}\n203.0.113.12 {key()}\n")
    path, strict = host_keys(inventory, validate(inventory))
    assert (path, strict) == (pinned.resolve(), True)
    argv = pyinfra_argv(inventory, dry=True, known_hosts=path, strict=strict)
    assert argv[3:7] == [
        "--data",
        f"ssh_known_hosts_file={pinned.resolve()}",
        "--data",
        "ssh_strict_host_key_checking=yes",
    ]


def test_lab_inventory_needs_no_pinned_file(example_repo: Path) -> None:
    inventory = example_repo / "inventory/lab.py"
    path, strict = host_keys(inventory, validate(inventory))
    # No pinned file beside it: the lab inventory names the keys `lab up` recorded itself,
    # with strict checking (a lab host whose key changed is refused).
    assert (path, strict) == (None, False)
    text = inventory.read_text()
    assert '"ssh_known_hosts_file": "/var/lib/relayops-lab/ssh/known_hosts"' in text
    assert '"ssh_strict_host_key_checking": "yes"' in text
    assert '"ssh_strict_host_key_checking": "no"' not in text
