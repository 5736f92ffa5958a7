"""Typed errors of the lab, each saying what failed and what to do."""

from __future__ import annotations

from collections.abc import Sequence


class LabError(Exception):
    """Base class of every lab failure."""


class NotRootError(LabError):
    """The lab needs root (namespaces, mounts, chroot)."""

    def __init__(self) -> None:
        super().__init__("the lab needs root: run `sudo relayops lab …` on Linux")


class CommandError(LabError):
    """A command the lab ran exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        super().__init__(f"command failed (exit {returncode}): {' '.join(self.argv)}\n{tail}")


class MirrorNotFoundError(LabError):
    """No Debian mirror could be read from the machine's APT configuration."""


class LabNotUpError(LabError):
    """An operation needs a running lab."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: the lab is not up; run `relayops lab up` first")


class LabTimeoutError(LabError):
    """A lab service did not answer in time."""
