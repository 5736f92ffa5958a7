"""Read YAML fast while keeping every node's position.

PyYAML's C parser composes the node tree (marks included) at about 0.2 ms per
customer file; a round-trip parser is 25x slower. We build plain Python values
from the node tree ourselves so we can refuse duplicate keys (PyYAML silently
keeps the last one) and bound alias expansion, and we keep the tree so an
error found later by pydantic or a cross-file rule can be mapped back to
file:line:column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # the C parser ships with Debian's and PyPI's PyYAML wheels
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - pure-Python fallback, same results, slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class _Loader(_BaseLoader):
    """The safe loader without path resolvers (we register none): a call less per node."""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


# A document that expands to more nodes than this is refused: a customer file has
# a few dozen, and an alias bomb ("billion laughs") has billions.
MAX_NODES = 200_000
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"


class YamlError(Exception):
    """The file is not YAML we accept; line/column are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Document:
    """A parsed YAML document: its value, and its text to find positions in.

    The node tree is composed again only when a position is asked for: keeping
    10,000 trees alive costs more in garbage-collector scans than re-reading the
    few files that have errors.
    """

    value: Any
    text: str
    _root: yaml.Node | None = field(default=None, repr=False)

    @property
    def root(self) -> yaml.Node | None:
        if self._root is None and self.text:
            self._root = yaml.compose(self.text, Loader=_Loader)
        return self._root

    def position(self, path: Sequence[str | int]) -> tuple[int, int, list[str | int]]:
        """Position of the deepest node reachable along `path`.

        Returns (line, column, matched) where `matched` is the prefix of `path`
        that exists in the document; segments that are not keys or indexes of
        the document (pydantic's internal union tags) are skipped.
        """
        node = self.root
        matched: list[str | int] = []
        if node is None:
            return 1, 1, matched
        best = node
        for segment in path:
            child = _child(node, segment)
            if child is None:
                continue
            key_node, node = child
            matched.append(segment)
            # point at the key for mappings, it is where a reader looks
            best = key_node if key_node is not None else node
        mark = best.start_mark
        return mark.line + 1, mark.column + 1, matched


def _child(node: yaml.Node, segment: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode) and isinstance(segment, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == segment:
                return key, value
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(segment, int)
        and 0 <= segment < len(node.value)
    ):
        return None, node.value[segment]
    return None


def parse(data: bytes) -> Document:
    """Parse one YAML document from bytes; raise YamlError with a position."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlError("is not UTF-8 text (is it a binary file?)", line, 1) from exc
    if "\x00" in text:
        raise YamlError("contains NUL bytes (is it a binary file?)", 1, 1)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(f"YAML syntax error: {problem}", line, column) from exc
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML error: {exc}", 1, 1) from exc
    if root is None:
        return Document(None, text)
    budget = [MAX_NODES]
    return Document(_build(root, budget), text)


def _build(node: yaml.Node, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        mark = node.start_mark
        raise YamlError(
            f"expands to more than {MAX_NODES} nodes (alias/anchor bomb?)",
            mark.line + 1,
            mark.column + 1,
        )
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _STR:  # most scalars: skip the constructor machinery
            return node.value
        # Call the tag's constructor directly: construct_object() would remember
        # every node in the shared constructor and grow without bound.
        constructors = yaml.constructor.SafeConstructor.yaml_constructors
        construct = constructors.get(node.tag) or constructors[None]
        try:
            return construct(_CONSTRUCTOR, node)
        except (yaml.constructor.ConstructorError, ValueError) as exc:
            mark = node.start_mark
            line, column = mark.line + 1, mark.column + 1
            raise YamlError(f"bad scalar {node.value!r}: {exc}", line, column) from exc
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, budget) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                mark = key_node.start_mark
                raise YamlError("merge keys (<<) are not supported", mark.line + 1, mark.column + 1)
            key = _build(key_node, budget)
            if not isinstance(key, str | int | float | bool) and key is not None:
                mark = key_node.start_mark
                raise YamlError("a mapping key must be a scalar", mark.line + 1, mark.column + 1)
            if key in result:
                mark = key_node.start_mark
                raise YamlError(f"duplicate key {key!r}", mark.line + 1, mark.column + 1)
            result[key] = _build(value_node, budget)
        return result
    raise YamlError(f"unsupported YAML node {node.tag}", 1, 1)  # pragma: no cover
