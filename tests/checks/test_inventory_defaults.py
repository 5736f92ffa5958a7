"""An inventory's group data can name the CA bundle and DNS server `relayops check` uses."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from relayops.checks.cli import check
from relayops.checks.from_repo import CheckDefaults, check_defaults
from relayops.loader import load_repo
from relayops.model import Inventory

GROUP = '"relayops_dnsbl_zones": [{"zone": "dnsbl.lab"}],'


def with_group(repo: Path, extra: str) -> Inventory:
    """The example lab inventory with `extra` group keys instead of the check keys."""
    path = repo / "inventory" / "lab.py"
    text = path.read_text()
    start = text.index('        "relayops_ca_bundle"')
    end = text.index("\n", text.index('"relayops_check_nameserver"'))
    path.write_text(text[:start] + extra + text[end:])
    loaded = load_repo(repo)
    assert loaded.repo is not None, loaded.findings
    return loaded.repo.inventories["lab"]


def test_group_data_names_ca_and_nameserver(example_repo: Path) -> None:
    inventory = load_repo(example_repo).repo.inventories["lab"]  # type: ignore[union-attr]
    assert check_defaults(inventory, example_repo) == CheckDefaults(
        ca_bundle=Path("/var/lib/relayops-lab/ca/ca.pem"), nameserver="198.18.0.2"
    )
    relative = with_group(example_repo, '        "relayops_ca_bundle": "lab/ca.pem",')
    assert check_defaults(relative, example_repo) == CheckDefaults(
        ca_bundle=example_repo / "lab" / "ca.pem", nameserver=None
    )


def test_no_group_data_means_system_defaults(example_repo: Path) -> None:
    assert check_defaults(with_group(example_repo, ""), example_repo) == CheckDefaults()


def test_wrong_types_are_validation_errors(example_repo: Path) -> None:
    path = example_repo / "inventory" / "lab.py"
    path.write_text(path.read_text().replace('"198.18.0.2"', "53"))
    loaded = load_repo(example_repo)
    assert [(f.file, f.field, f.message) for f in loaded.findings] == [
        ("inventory/lab.py", "relayops_check_nameserver", "input should be a valid string")
    ]


def test_a_missing_ca_bundle_named_by_the_inventory_exits_2(example_repo: Path) -> None:
    with_group(example_repo, '        "relayops_ca_bundle": "/nonexistent/relayops/ca.pem",')
    outcome = CliRunner().invoke(check, ["--repo", str(example_repo), "--inventory", "lab"])
    assert outcome.exit_code == 2
    assert (
        "relayops check: inventory lab names relayops_ca_bundle /nonexistent/relayops/ca.pem, "
        "which does not exist" in outcome.output
    )
    assert "relayops deploy --inventory lab" in outcome.output
