"""Deliveries -> pauses: a "slow down" deferral pauses that IP × ISP class (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from relayops.backoff.deliveries import OTHER_CLASS, Delivery
from relayops.backoff.pauses import Pause
from relayops.backoff.slowdown import slow_down


def pauses_from(
    deliveries: Iterable[Delivery],
    *,
    pause_seconds: int,
    per_class: Mapping[str, int] | None = None,
) -> Iterator[Pause]:
    """One Pause per deferral that asks to slow down, from the time of that reply, for its
    class's pause time (`per_class`: the policy's `back_off.pause_seconds`), else
    `pause_seconds`. The sender is the output instance's egress (`ip-…`, `pool-…`).

    Destinations in no ISP class are left to Postfix's own per-destination back-off:
    the instance's transport table has nothing to route them to another transport by.
    """
    for d in deliveries:
        if d.status != "deferred" or d.isp_class == OTHER_CLASS:
            continue
        kind = slow_down(d.reply)
        if kind is None:
            continue
        since = d.at.timestamp()
        seconds = (per_class or {}).get(d.isp_class, pause_seconds)
        sender = d.egress or f"ip-{d.ip}"
        yield Pause(sender, d.isp_class, since, since + seconds, kind.value, d.reply)
