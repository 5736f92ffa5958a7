"""`relayops deploy` refuses an invalid repository before touching any host."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from relayops.cli import cli
from relayops.deploy.report import summary
from relayops.deploy.runner import DEPLOY_FILE, pyinfra_argv


def test_deploy_refuses_an_invalid_repository_with_exit_2(example_repo: Path) -> None:
    (example_repo / "customers" / "acme.yaml").write_text("name: [unclosed\n")
    result = CliRunner().invoke(cli, ["deploy", "--repo", str(example_repo), "--inventory", "lab"])
    assert result.exit_code == 2
    assert "invalid repository (1 error(s) above); fix them first" in result.output
    assert "acme.yaml" in result.output


def test_deploy_refuses_a_file_outside_inventory(tmp_path: Path) -> None:
    stray = tmp_path / "hosts.py"
    stray.write_text("relays = []\n")
    result = CliRunner().invoke(cli, ["deploy", "--inventory", str(stray)])
    assert result.exit_code == 2
    assert result.output == (
        f"relayops deploy: {stray}: expected an inventory file inside a repository's "
        "inventory/ folder (for example inventory/lab.py)\n"
    )


def test_pyinfra_command_lines() -> None:
    inv = Path("/r/inventory/lab.py")
    assert pyinfra_argv(inv, dry=False)[1:] == ["-y", str(inv), str(DEPLOY_FILE)]
    dry = pyinfra_argv(inv, dry=True, limit=["relay1"])
    assert dry[1:] == ["--dry", "--diff", "--limit", "relay1", str(inv), str(DEPLOY_FILE)]


PYINFRA_OUTPUT = """\
--> Beginning operation run...
--> Starting operation: File /etc/relayops/policy.json (content)
    [relay2.relay.example.net] Success
    [relay1.relay.example.net] Success

--> Starting operation: Check postfix configuration: postfix -c /etc/postfix check
    [relay2.relay.example.net] Error
    [relay1.relay.example.net] Skipped

--> Starting operation: Reload relayops-policyd
    [relay1.relay.example.net] Success
"""


def test_summary_reads_changed_and_failed_hosts_from_pyinfra_output() -> None:
    got = summary(PYINFRA_OUTPUT)
    assert got["changed"] == {
        "relay2.relay.example.net": ["File /etc/relayops/policy.json (content)"],
        "relay1.relay.example.net": [
            "File /etc/relayops/policy.json (content)",
            "Reload relayops-policyd",
        ],
    }
    assert got["failed"] == {
        "relay2.relay.example.net": ["Check postfix configuration: postfix -c /etc/postfix check"]
    }
    assert summary("--> Results:\n")["operations"] == []


def test_json_refusal(example_repo: Path) -> None:
    (example_repo / "customers" / "acme.yaml").write_text("name: [unclosed\n")
    inventory = str(example_repo / "inventory/lab.py")
    result = CliRunner().invoke(
        cli, ["deploy", "--json", "--repo", str(example_repo), "--inventory", inventory]
    )
    assert result.exit_code == 2
    payload = json.loads(result.output)
    assert list(payload) == ["ok", "errors"] and payload["ok"] is False
    assert payload["errors"][0]["file"] == "customers/acme.yaml"


def test_an_inventory_file_of_another_repository_is_refused(example_repo: Path) -> None:
    inventory = str(example_repo / "inventory/lab.py")
    result = CliRunner().invoke(cli, ["deploy", "--inventory", inventory])
    assert result.exit_code == 2
    assert f"relayops deploy: {inventory} is not an inventory of " in result.output


def test_lab_host_keys_are_handed_to_pyinfra() -> None:
    inv = Path("/r/inventory/lab.py")
    argv = pyinfra_argv(inv, dry=False, known_hosts=Path("/var/lib/relayops-lab/ssh/known_hosts"))
    assert argv[2:4] == ["--data", "ssh_known_hosts_file=/var/lib/relayops-lab/ssh/known_hosts"]
