"""The released-IP ledger: `policies/released-ips.yaml`.

A dedicated IP given back (its customer terminated, or swapped to a new IP) keeps
its reputation, good or bad, for a year; the services we model do not hand it to
anyone else before then. The ledger records each release so the quarantine holds
even after the old customer's file is deleted.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field

from relayops.model.fields import Slug, Strict


class ReleasedIp(Strict):
    """One release of a dedicated IP."""

    ip: Slug = Field(description="name of the dedicated IP in the inventory")
    released: date = Field(description="the day the customer gave the IP back")
    customer: Slug = Field(description="id of the customer who held it (its file may be gone)")
    reason: str = Field(
        min_length=3, max_length=300, description="why: termination, paid IP swap, ..."
    )


class ReleasedIpsFile(Strict):
    released: list[ReleasedIp] = Field(
        default_factory=list, description="releases, oldest first; entries are never removed"
    )
