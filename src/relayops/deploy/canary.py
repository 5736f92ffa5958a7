"""Deploy stages: with a canary, that one host first, then the rest, stopping at a failure.

A bad change then breaks one relay while the others keep serving, and the rest are
not touched. Pure: host names in, ordered stages out.
"""

from __future__ import annotations

from collections.abc import Sequence

from relayops.deploy.errors import DeployError


def stages(
    hosts: Sequence[str], *, canary: str | None, limit: Sequence[str] = ()
) -> list[tuple[str, ...]]:
    """The `--limit` sets of each pyinfra run, in order; `()` means every host.

    >>> stages(["r1", "r2", "r3"], canary="r2")
    [('r2',), ('r1', 'r3')]
    """
    unknown = [h for h in (*limit, *([canary] if canary else [])) if h not in hosts]
    if unknown:
        raise DeployError(
            f"not a host of the inventory: {', '.join(unknown)}; known: {', '.join(hosts)}"
        )
    if canary is None:
        return [tuple(limit)]
    chosen = list(limit) or list(hosts)
    if canary not in chosen:
        raise DeployError(f"the canary {canary} is not among the hosts --limit selects")
    rest = tuple(h for h in chosen if h != canary)
    return [(canary,), rest] if rest else [(canary,)]
