"""An inventory's group data can name the CA bundle and DNS server `relayops check` uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from relayops.checks.cli import check
from relayops.checks.from_repo import CheckDefaults, inventory_check_defaults
from relayops.checks.result import CheckInputError

HOSTS = '[("r1.relay.test", {"ssh_hostname": "198.18.0.11"})]'


def inventory(tmp_path: Path, group: str | None) -> Path:
    path = tmp_path / "inventory" / "lab.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    relays = f"({HOSTS}, {group})" if group is not None else HOSTS
    path.write_text(f"relays = {relays}\n")
    return path


def test_group_data_names_ca_and_nameserver(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        '{"relayops_ca_bundle": "lab/ca.pem", "relayops_check_nameserver": "198.18.0.2"}',
    )
    assert inventory_check_defaults(path, tmp_path) == CheckDefaults(
        ca_bundle=tmp_path / "lab" / "ca.pem", nameserver="198.18.0.2"
    )
    absolute = inventory(tmp_path, '{"relayops_ca_bundle": "/var/lib/x/ca.pem"}')
    assert inventory_check_defaults(absolute, tmp_path).ca_bundle == Path("/var/lib/x/ca.pem")


def test_no_group_data_means_system_defaults(tmp_path: Path) -> None:
    assert inventory_check_defaults(inventory(tmp_path, None), tmp_path) == CheckDefaults()
    assert inventory_check_defaults(inventory(tmp_path, "{}"), tmp_path) == CheckDefaults()


def test_wrong_types_and_broken_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckInputError, match="relayops_check_nameserver must be a string"):
        inventory_check_defaults(inventory(tmp_path, '{"relayops_check_nameserver": 53}'), tmp_path)
    broken = tmp_path / "inventory" / "broken.py"
    broken.write_text("relays = [\n")
    with pytest.raises(CheckInputError, match="cannot execute inventory"):
        inventory_check_defaults(broken, tmp_path)


def test_a_missing_ca_bundle_named_by_the_inventory_exits_2(tmp_path: Path) -> None:
    path = inventory(tmp_path, '{"relayops_ca_bundle": "/nonexistent/relayops/ca.pem"}')
    outcome = CliRunner().invoke(check, ["--inventory", str(path)])
    assert outcome.exit_code == 2
    assert "names relayops_ca_bundle /nonexistent/relayops/ca.pem, which does not exist" in (
        outcome.output
    )
    assert "relayops deploy --inventory" in outcome.output
