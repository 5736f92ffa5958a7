"""Round-trip YAML: untouched files come back byte for byte; written strings read back as such."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from customer.helpers import Run
from relayops.customer_edits import set_status
from relayops.loader import load_repo
from relayops.model import Status
from relayops.roundtrip import dump, load_mapping, scalar
from relayops.yamlfile import parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [*sorted((ROOT / "customers").glob("*.yaml")), ROOT / "policies/released-ips.yaml"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_files_round_trip_unchanged(path: Path) -> None:
    original = path.read_text(encoding="utf-8")
    assert dump(load_mapping(original, name=path.name)) == original


# YAML 1.1 (the loader) reads these plain scalars as booleans, numbers, dates or null
YAML11_NON_STRINGS = ["no", "Yes", "off", "ON", "0755", "1:20", "12", "1_000", "~", "null",
                      "2026-01-01", ".inf", "0x1f"]  # fmt: skip
PLAIN = [
    "unpaid invoice",
    "acme.example",
    "rly2026",
    "Europe/Paris",
    "dedicated-1",
    "bücher.example",
]


@pytest.mark.parametrize("value", YAML11_NON_STRINGS)
def test_values_yaml_1_1_would_misread_are_quoted(value: str) -> None:
    doc = load_mapping("key: x\n", name="t")
    doc["key"] = scalar(value)
    written = dump(doc)
    assert written == f'key: "{value}"\n'
    assert yaml.safe_load(written) == {"key": value}


@pytest.mark.parametrize("value", PLAIN)
def test_plain_strings_stay_plain(value: str) -> None:
    doc = load_mapping("key: x\n", name="t")
    doc["key"] = scalar(value)
    assert dump(doc) == f"key: {value}\n"


def test_a_reason_yaml_1_1_reads_as_boolean_is_kept_as_text(run: Run, example_repo: Path) -> None:
    result = run("suspend", "acme", "--reason", "off")
    assert result.exit_code == 0, result.stderr
    assert 'status_reason: "off"\n' in (example_repo / "customers/acme.yaml").read_text()
    loaded = load_repo(example_repo).repo
    assert loaded is not None and loaded.customers["acme"].status_reason == "off"


def test_broken_yaml_is_refused_by_name() -> None:
    with pytest.raises(Exception, match=r"^customers/x.yaml is not valid YAML: "):
        load_mapping("name: [unclosed\n", name="customers/x.yaml")
    with pytest.raises(Exception, match=r"^customers/x.yaml does not hold a mapping of fields$"):
        load_mapping("- a\n", name="customers/x.yaml")


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]),
        min_size=1,
        max_size=60,
    )
)
def test_any_reason_reads_back_as_written(reason: str) -> None:
    """Whatever an operator types as a reason, the loader (PyYAML) reads that exact string."""
    written = set_status(
        "name: X\nplan: pro\n", "t", status=Status.SUSPENDED, reason=reason, day=date(2026, 1, 2)
    )
    assert parse(written.encode("utf-8")).value["status_reason"] == reason
