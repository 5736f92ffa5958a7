"""Errors of the deploy, each saying what to do."""

from __future__ import annotations

from pathlib import Path

from relayops.diagnostics import Finding


class DeployError(Exception):
    """The deploy cannot go on; the message names the cause and the fix."""


class InvalidRepository(DeployError):
    """The repository does not validate: nothing is deployed; `findings` say why."""

    def __init__(self, root: Path, findings: list[Finding]) -> None:
        self.root = root
        self.findings = findings
        lines = "\n".join(f"  {f}" for f in findings)
        super().__init__(
            f"{root}: the repository does not validate (run relayops validate):\n{lines}"
        )
