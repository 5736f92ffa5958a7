"""Typed check results: what was seen and, when it is not ok, what to do about it."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Status(enum.Enum):
    """Outcome of one check; `ERROR` makes `relayops check` exit 1."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """Sort key: failing checks first."""
        return {"error": 0, "warning": 1, "ok": 2}[self.value]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One judged fact.

    `group` is what a reader looks the result up by (`host relay1.example.net` or
    `customer acme`), `subject` the thing checked within it (`acme.example SPF`,
    `198.18.0.10:587`), `message` one sentence saying what was seen and, unless ok,
    what to do.
    """

    check: str  # mechanism: dns, tls, ports, relay, dnsbl
    group: str
    subject: str
    status: Status
    message: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


def ok(check: str, group: str, subject: str, message: str) -> CheckResult:
    return CheckResult(check, group, subject, Status.OK, message)


def warning(check: str, group: str, subject: str, message: str) -> CheckResult:
    return CheckResult(check, group, subject, Status.WARNING, message)


def error(check: str, group: str, subject: str, message: str) -> CheckResult:
    return CheckResult(check, group, subject, Status.ERROR, message)


def worst(results: list[CheckResult]) -> Status:
    """The most severe status among `results` (ok when empty)."""
    return min((r.status for r in results), key=lambda s: s.rank, default=Status.OK)


class CheckInputError(ValueError):
    """Raised when the check targets or options are unusable; the message says what to fix."""
