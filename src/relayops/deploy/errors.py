"""Errors of the deploy, each saying what to do."""

from __future__ import annotations


class DeployError(Exception):
    """The deploy cannot go on; the message names the cause and the fix."""
