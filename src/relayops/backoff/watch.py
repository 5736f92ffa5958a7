"""Deliveries -> pauses: a "slow down" deferral pauses that IP × ISP class (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from relayops.backoff.pauses import Pause
from relayops.backoff.slowdown import slow_down
from relayops.warmup.deliveries import OTHER_CLASS, Delivery


def pauses_from(deliveries: Iterable[Delivery], *, pause_seconds: int) -> Iterator[Pause]:
    """One Pause per deferral that asks to slow down, from the time of that reply.

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
        yield Pause(d.ip, d.isp_class, since, since + pause_seconds, kind.value, d.reply)
