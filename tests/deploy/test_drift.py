"""Reading a dry run's changes table: which host drifted, and how."""

from __future__ import annotations

from pathlib import Path

from relayops.deploy.report import detected_changes

DATA = Path(__file__).parent / "data"


def test_a_hand_edited_main_cf_is_drift_on_that_host_only() -> None:
    # Captured from `relayops deploy --dry` on the lab after `echo '# drift' >>` relay1's
    # main.cf. The names are pyinfra's: the step's @deploy group, " | ", the operation.
    output = (DATA / "dry-run-drift.txt").read_text()
    assert detected_changes(output) == {
        "relay1.relay.example.net": [
            "Directories, files and maps | File /etc/postfix/main.cf (content)",
            "Configuration checks | Check postfix configuration: postfix check",
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
