"""Property tests of the position-keeping YAML reader: it never fails in another way."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from relayops.yamlfile import YamlError, parse

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.floats(allow_nan=False)
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_parse_or_raise_yaml_error(data: bytes) -> None:
    try:
        parse(data)
    except YamlError as exc:
        assert exc.line >= 1 and exc.column >= 1


@settings(max_examples=300, deadline=None)
@given(documents)
def test_round_trips_what_pyyaml_dumps(value: object) -> None:
    text = yaml.safe_dump(value, allow_unicode=True)
    assert parse(text.encode()).value == yaml.safe_load(text)


keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, st.lists(st.integers(), max_size=3), min_size=1, max_size=6))
def test_positions_point_at_keys(mapping: dict[str, list[int]]) -> None:
    text = yaml.safe_dump({"outer": mapping})
    doc = parse(text.encode())
    lines = text.splitlines()
    for key in mapping:
        line, column, matched = doc.position(["outer", key, 99])
        assert matched == ["outer", key]  # index 99 does not exist and is skipped
        assert lines[line - 1][column - 1 :].lstrip("'").startswith(key)


def test_duplicate_and_bomb_are_refused() -> None:
    for text, fragment in [
        (b"a: 1\na: 2\n", "duplicate key"),
        (b"a: &x [1]\nb: {<<: *x}\n", "merge keys"),
    ]:
        try:
            parse(text)
        except YamlError as exc:
            assert fragment in exc.message
        else:
            raise AssertionError(text)
