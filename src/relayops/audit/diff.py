"""Two versions of a document -> the fields that changed (pure).

Lists of mappings are matched by their identifying field (domains by `name`,
users by `login`), so reordering them is not a change; lists of plain values
(an ISP class's domains) compare as multisets and change as a whole. Paths read
like the validator's: `domains[1].dkim.selector`, indexes in the newer version
(the older one for a removed item).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

# Fields that identify an item of a list, tried in this order.
KEY_FIELDS = ("name", "login", "zone")

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class FieldChange:
    path: str
    change: ChangeKind
    old: Any = None  # meaningless when added
    new: Any = None  # meaningless when removed


def diff(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Every field that differs between `old` and `new`, in document order."""
    if isinstance(old, dict) and isinstance(new, dict):
        return _diff_mappings(old, new, path)
    if isinstance(old, list) and isinstance(new, list):
        return _diff_lists(old, new, path)
    if _same(old, new):
        return []
    return [FieldChange(path, "changed", old, new)]


def fields(value: Any, change: Literal["added", "removed"]) -> list[FieldChange]:
    """A whole document as one entry per top-level field (an added or removed file)."""
    if not isinstance(value, dict):
        return [_one("", change, value)]
    return [_one(str(key), change, item) for key, item in value.items()]


def _one(path: str, change: Literal["added", "removed"], value: Any) -> FieldChange:
    if change == "added":
        return FieldChange(path, "added", new=value)
    return FieldChange(path, "removed", old=value)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type: YAML `1` and `true` and `1.0` are different values."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _diff_mappings(old: dict[Any, Any], new: dict[Any, Any], path: str) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for key, value in old.items():
        if key in new:
            changes += diff(value, new[key], _join(path, key))
        else:
            changes.append(_one(_join(path, key), "removed", value))
    changes += [_one(_join(path, k), "added", v) for k, v in new.items() if k not in old]
    return changes


def _key_field(old: Sequence[Any], new: Sequence[Any]) -> str | None:
    """The field identifying every item of both lists uniquely, if there is one."""
    items = [*old, *new]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for field in KEY_FIELDS:
        if all(_hashable(item.get(field)) for item in items) and all(
            len({item.get(field) for item in side}) == len(side)
            and all(field in item for item in side)
            for side in (old, new)
        ):
            return field
    return None


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _diff_lists(old: list[Any], new: list[Any], path: str) -> list[FieldChange]:
    key = _key_field(old, new)
    if key is not None:
        before = {item[key]: (index, item) for index, item in enumerate(old)}
        after = {item[key] for item in new}
        changes: list[FieldChange] = []
        for index, item in enumerate(new):
            item_path = f"{path}[{index}]"
            if item[key] in before:
                changes += diff(before[item[key]][1], item, item_path)
            else:
                changes.append(_one(item_path, "added", item))
        for name, (index, item) in before.items():
            if name not in after:
                changes.append(_one(f"{path}[{index}]", "removed", item))
        return changes
    if all(_hashable(x) or x is None for x in [*old, *new]):
        # plain values: order carries no meaning in these files
        if Counter((type(x), x) for x in old) == Counter((type(x), x) for x in new):
            return []
        return [FieldChange(path, "changed", old, new)]
    changes = []
    for index in range(max(len(old), len(new))):
        item_path = f"{path}[{index}]"
        if index >= len(old):
            changes.append(_one(item_path, "added", new[index]))
        elif index >= len(new):
            changes.append(_one(item_path, "removed", old[index]))
        else:
            changes += diff(old[index], new[index], item_path)
    return changes
