"""diff.diff: field-level changes between two versions of a document."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from relayops.audit.diff import FieldChange, diff, fields

ACME = {
    "plan": "business",
    "domains": [
        {"name": "acme.example", "dkim": {"selector": "rly2026"}},
        {"name": "acme-mail.example", "dkim": {"selector": "rly2026"}},
    ],
    "users": [{"login": "a", "password": "x"}, {"login": "b", "password": "y"}],
}


def test_identical_and_reordered_keyed_lists_are_no_change() -> None:
    reordered = {**ACME, "domains": ACME["domains"][::-1], "users": ACME["users"][::-1]}
    assert diff(ACME, ACME) == []
    assert diff(ACME, reordered) == []


def test_keyed_item_field_path_uses_the_new_index() -> None:
    new = {
        **ACME,
        "domains": [
            {"name": "acme-mail.example", "dkim": {"selector": "rly2027"}},
            {"name": "acme.example", "dkim": {"selector": "rly2026"}},
        ],
    }
    assert diff(ACME, new) == [
        FieldChange("domains[0].dkim.selector", "changed", "rly2026", "rly2027")
    ]


def test_keyed_items_added_and_removed() -> None:
    new = {**ACME, "users": [{"login": "b", "password": "y"}, {"login": "c", "password": "z"}]}
    assert diff(ACME, new) == [
        FieldChange("users[1]", "added", new={"login": "c", "password": "z"}),
        FieldChange("users[0]", "removed", old={"login": "a", "password": "x"}),
    ]


def test_scalar_fields_added_removed_changed() -> None:
    assert diff({"a": 1, "b": 2}, {"b": 3, "c": 4}) == [
        FieldChange("a", "removed", old=1),
        FieldChange("b", "changed", 2, 3),
        FieldChange("c", "added", new=4),
    ]


def test_types_matter_true_is_not_one() -> None:
    assert diff({"x": 1}, {"x": True}) == [FieldChange("x", "changed", 1, True)]
    assert diff({"x": 1}, {"x": 1.0}) == [FieldChange("x", "changed", 1, 1.0)]
    assert diff({"x": None}, {"x": None}) == []


def test_plain_value_lists_compare_as_multisets() -> None:
    old = {"domains": ["gmail.com", "googlemail.com"]}
    assert diff(old, {"domains": ["googlemail.com", "gmail.com"]}) == []
    assert diff(old, {"domains": ["gmail.com"]}) == [
        FieldChange("domains", "changed", ["gmail.com", "googlemail.com"], ["gmail.com"])
    ]
    assert diff({"d": ["a", "a"]}, {"d": ["a"]}) == [FieldChange("d", "changed", ["a", "a"], ["a"])]


def test_lists_without_a_key_compare_by_position() -> None:
    old = {"stages": [{"first_day": 1, "daily_cap": 200}, {"first_day": 4, "daily_cap": 500}]}
    new = {"stages": [{"first_day": 1, "daily_cap": 300}]}
    assert diff(old, new) == [
        FieldChange("stages[0].daily_cap", "changed", 200, 300),
        FieldChange("stages[1]", "removed", old={"first_day": 4, "daily_cap": 500}),
    ]


def test_duplicate_keys_fall_back_to_positions() -> None:
    old = [{"name": "a", "v": 1}, {"name": "a", "v": 2}]
    new = [{"name": "a", "v": 2}, {"name": "a", "v": 1}]
    assert diff(old, new) == [
        FieldChange("[0].v", "changed", 1, 2),
        FieldChange("[1].v", "changed", 2, 1),
    ]


def test_type_change_of_a_subtree_is_one_change() -> None:
    assert diff({"p": {"pool": "eu"}}, {"p": "eu"}) == [
        FieldChange("p", "changed", {"pool": "eu"}, "eu")
    ]


def test_fields_of_a_whole_document() -> None:
    assert fields({"a": 1, "b": [2]}, "added") == [
        FieldChange("a", "added", new=1),
        FieldChange("b", "added", new=[2]),
    ]
    assert fields("text", "removed") == [FieldChange("", "removed", old="text")]


# YAML-shaped values: what a parsed policy file can hold
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["name", "login", "a", "b"]), children, max_size=4)
    ),
    max_leaves=20,
)


@given(values)
def test_a_value_never_differs_from_itself(value: Any) -> None:
    assert diff(value, value) == []


@given(values, values)
def test_diff_never_crashes_and_is_empty_only_for_equal_values(old: Any, new: Any) -> None:
    changes = diff(old, new)
    assert all(c.change in ("added", "removed", "changed") for c in changes)
    if old == new and type(old) is type(new) and repr(old) == repr(new):
        assert changes == []
