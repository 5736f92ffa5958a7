"""DKIM key rotation as three reviewed changes, none of which lets a message fail.

1. **publish**: a new selector is added as `dkim.next`; its key is generated and the
   plan lists its record. The current selector still signs. Deploy, publish the record.
2. **switch**: once the new record answers in DNS, `next` becomes the signing selector
   and the old one moves to `dkim.previous` with a `retire_after` date: messages signed
   with it may still be queued at receivers, so its record stays published until then.
3. **retire**: after that date `previous` is dropped (the customer may then delete the
   old record and the operator the old key files).

This module is pure: the step to take and the new `dkim` mapping. The command
(`relayops dkim rotate`) does the I/O: key generation, the DNS look-up, the YAML edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from relayops.model import Dkim

DEFAULT_KEEP_DAYS = 7  # how long a rotated-out selector stays published


class Step(StrEnum):
    PUBLISH = "publish"
    SWITCH = "switch"
    RETIRE = "retire"


class RotationError(ValueError):
    """The requested step cannot be taken now; the message says why and what to do."""


@dataclass(frozen=True)
class Rotation:
    step: Step
    new_dkim: dict[str, Any]  # the domain's `dkim` mapping after the step
    new_selector: str | None  # PUBLISH: the selector whose key must be generated
    retired_selector: str | None  # RETIRE: the selector whose record may now be removed


def next_step(dkim: Dkim) -> Step:
    if dkim.next is not None:
        return Step.SWITCH
    if dkim.previous is not None:
        return Step.RETIRE
    return Step.PUBLISH


def default_selector(current: str, today: date) -> str:
    """`rly2026` -> `rly20261201`: the current selector's letters and today's date."""
    prefix = re.sub(r"[-\d]+$", "", current) or "s"
    candidate = f"{prefix}{today:%Y%m%d}"
    return candidate if candidate != current else f"{candidate}b"


def rotate(
    dkim: Dkim,
    *,
    today: date,
    selector: str | None = None,
    keep_days: int = DEFAULT_KEEP_DAYS,
    force: bool = False,
) -> Rotation:
    """The next step of `dkim`'s rotation; RotationError when it must wait."""
    step = next_step(dkim)
    if step is Step.PUBLISH:
        new = selector or default_selector(dkim.selector, today)
        if new == dkim.selector:
            raise RotationError(f"selector {new!r} already signs; choose another")
        return Rotation(step, {"selector": dkim.selector, "next": {"selector": new}}, new, None)
    if selector is not None:
        raise RotationError(
            f"a rotation is in progress ({step} is next): --selector only starts one"
        )
    if step is Step.SWITCH:
        assert dkim.next is not None
        retire_after = today + timedelta(days=keep_days)
        new_dkim = {
            "selector": dkim.next.selector,
            "previous": {"selector": dkim.selector, "retire_after": retire_after},
        }
        return Rotation(step, new_dkim, None, None)
    assert dkim.previous is not None
    if today < dkim.previous.retire_after and not force:
        raise RotationError(
            f"selector {dkim.previous.selector!r} stays published until "
            f"{dkim.previous.retire_after}: retire it then (or --force)"
        )
    return Rotation(step, {"selector": dkim.selector}, None, dkim.previous.selector)
