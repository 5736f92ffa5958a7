"""Reading a dry run's changes table: which host drifted, and how."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from relayops.cli import cli
from relayops.deploy import drift as drift_command
from relayops.deploy import runner
from relayops.deploy.report import detected_changes
from relayops.deploy.runner import DeployResult
from relayops.deploy.target import Target

DATA = Path(__file__).parent / "data"


def test_a_hand_edited_main_cf_is_drift_on_that_host_only() -> None:
    # Captured from `relayops deploy --dry` on the lab after `echo '# drift' >>` relay1's
    # main.cf. The names are pyinfra's: the step's @deploy group, " | ", the operation.
    output = (DATA / "dry-run-drift.txt").read_text()
    assert detected_changes(output) == {
        "relay1.relay.example.net": [
            "Directories, files and maps | File /etc/postfix/main.cf (content)",
            "Configuration checks | Check postfix configuration: postfix -c /etc/postfix check",
            "Services | Reload postfix",
        ]
    }


def test_no_changes_table_means_no_drift() -> None:
    assert detected_changes("--> Loading config...\n--> Disconnecting from hosts...\n") == {}


def test_conditional_changes_and_several_hosts_count() -> None:
    output = (
        "--> Detected changes:\n"
        "    Operation          Change                 Conditional Change   \n"
        "    Start postfix      2 (r1.example, r2.example)   -   \n"
        "    Reload dovecot     -                      1 (r2.example)   \n"
        "\n"
    )
    assert detected_changes(output) == {
        "r1.example": ["Start postfix"],
        "r2.example": ["Start postfix", "Reload dovecot"],
    }


def test_shortened_host_names_get_their_full_name_back() -> None:
    output = (
        "--> Detected changes:\n"
        "    Operation          Change                 Conditional Change   \n"
        "    Restart relayops-policyd   1 (relay2.relay.exampl...)   -   \n"
    )
    hosts = ["relay1.relay.example.net", "relay2.relay.example.net"]
    assert detected_changes(output, hosts) == {
        "relay2.relay.example.net": ["Restart relayops-policyd"]
    }


def test_drift_names_the_host_exits_1_and_compiles_once(
    monkeypatch: pytest.MonkeyPatch, example_repo: Path
) -> None:
    """The command takes the host names from the target the dry run compiled."""
    compiles: list[str] = []
    real = runner.load_target

    def counted(root: Path, inventory_name: str) -> Target:
        compiles.append(inventory_name)
        return real(root, inventory_name)

    def dry_run(inventory_file: Path, **kwargs: object) -> DeployResult:
        assert kwargs == {"repo": example_repo, "dry": True, "capture": True}
        target = runner.validate(inventory_file, example_repo)
        return DeployResult(0, 1.7, (DATA / "dry-run-drift.txt").read_text(), target)

    monkeypatch.setattr(runner, "load_target", counted)
    monkeypatch.setattr(drift_command, "run_deploy", dry_run)
    result = CliRunner().invoke(cli, ["drift", "--repo", str(example_repo)])
    assert (result.exit_code, compiles) == (1, ["lab"])
    assert result.output == (
        "relay1.relay.example.net: drift\n"
        "  - Directories, files and maps | File /etc/postfix/main.cf (content)\n"
        "  - Configuration checks | Check postfix configuration: postfix -c /etc/postfix check\n"
        "  - Services | Reload postfix\n"
    )
    as_json = CliRunner().invoke(cli, ["drift", "--repo", str(example_repo), "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.output) == {
        "ok": False,
        "inventory": str(example_repo / "inventory" / "lab.py"),
        "drift": {
            "relay1.relay.example.net": [
                "Directories, files and maps | File /etc/postfix/main.cf (content)",
                "Configuration checks | Check postfix configuration: postfix -c /etc/postfix check",
                "Services | Reload postfix",
            ]
        },
    }


def test_drift_of_an_unknown_inventory_exits_2(example_repo: Path) -> None:
    result = CliRunner().invoke(cli, ["drift", "--repo", str(example_repo), "--inventory", "x"])
    assert result.exit_code == 2
    assert result.output == f"relayops drift: no inventory {example_repo}/inventory/x.py\n"
