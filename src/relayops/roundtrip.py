"""Round-trip YAML (ruamel.yaml): edit a reviewed file so its diff is only the change.

The loader reads with PyYAML's C parser for speed (`yamlfile.py`); commands that
write YAML read and write it here instead, keeping comments, key order, quoting
and flow style. The layout matches the example files: two-space mappings,
sequences indented two with the dash (`  - name: ...`), no line folding.
"""

from __future__ import annotations

import io
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

# Long Dovecot hashes and reasons stay on one line, as operators write them.
_WIDTH = 4096


class RoundTripError(Exception):
    """The file is not YAML this module can edit; the message says where."""


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = _WIDTH
    return yaml


def load_mapping(text: str, *, name: str) -> CommentedMap:
    """The document's top-level mapping, ready to edit."""
    try:
        data: Any = _yaml().load(text)
    except YAMLError as exc:
        raise RoundTripError(f"{name} is not valid YAML: {exc}") from exc
    if not isinstance(data, CommentedMap):
        raise RoundTripError(f"{name} does not hold a mapping of fields")
    return data


_STR = "tag:yaml.org,2002:str"
_RESOLVER = pyyaml.resolver.Resolver()


def scalar(value: str) -> str:
    """`value` as a string scalar both YAML versions read back as that string.

    ruamel.yaml writes YAML 1.2, where `no`, `on` or `0755` are plain strings; the
    loader (PyYAML) reads YAML 1.1, where they are a boolean and a number. Such a
    value is written in double quotes.
    """
    implicit = (True, False)  # as a plain scalar
    tag: str = _RESOLVER.resolve(pyyaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
    if tag != _STR:
        quoted: str = DoubleQuotedScalarString(value)
        return quoted
    return value


def dump(data: CommentedMap) -> str:
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    return buffer.getvalue()


def block_seq(data: CommentedMap, key: str) -> CommentedSeq:
    """The sequence at `key`, created if missing, in block style (`[]` becomes a block)."""
    seq = data.get(key)
    if not isinstance(seq, CommentedSeq):
        seq = CommentedSeq()
        data[key] = seq
    seq.fa.set_block_style()
    return seq


def flow_map(**items: Any) -> CommentedMap:
    """A mapping written on one line (`{selector: s1}`), as the examples write dkim."""
    mapping = CommentedMap(items)
    mapping.fa.set_flow_style()
    return mapping
