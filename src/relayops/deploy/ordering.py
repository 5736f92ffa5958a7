"""Stable operation positions, so that hosts with different changes share one operation order.

pyinfra orders operations by call site and loop position; two hosts looping over
different lists at one call site would disagree on the order (a cycle). Keying the
position on the item itself (a path, a service's rank) keeps every host consistent
and lets the same file on several hosts show as one operation.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def path_position(path: str) -> int:
    """Parents before children (depth first in the key), then a stable hash of the path."""
    return (path.rstrip("/").count("/") << 32) | zlib.crc32(path.encode())


def positioned(host: Any, items: Iterable[T], key: Callable[[T], int]) -> Iterator[T]:
    """Iterate `items` in key order with pyinfra's loop position set to each item's key."""
    host.loop_position.append(0)
    try:
        for item in sorted(items, key=key):
            host.loop_position[-1] = key(item)
            yield item
    finally:
        host.loop_position.pop()
