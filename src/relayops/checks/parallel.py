"""Run independent probes concurrently, keeping the results in input order.

Against remote servers, checks wait on the network (DNS round trips, TLS handshakes,
timeouts of dead hosts), and threads overlap those waits. Against a fast local server
the run is CPU-bound and gains nothing: 1,000 sender domains (3,001 results) took 7.7 s
with 1 worker and 8.0 s with 32 against a loopback NSD. Order is kept so the report does
not depend on timing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def gather(fn: Callable[[T], list[R]], items: Sequence[T], *, workers: int) -> list[R]:
    """`[r for item in items for r in fn(item)]`, with up to `workers` calls at once."""
    if workers <= 1 or len(items) <= 1:
        return [r for item in items for r in fn(item)]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return [r for chunk in pool.map(fn, items) for r in chunk]
