"""The lab fixture, shared with other engineers' lab tests (import it the same way)."""

from __future__ import annotations

from relayops.lab.testing import lab

__all__ = ["lab"]
