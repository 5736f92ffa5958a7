"""Validation findings: one record per problem, each pointing at file:line:column."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

_MAX_VALUE_CHARS = 80


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in the repository, located precisely enough to fix it."""

    file: str
    line: int
    column: int
    field: str
    message: str
    value: str | None = None

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        shown = f" (got {self.value})" if self.value is not None else ""
        where = f" {self.field}:" if self.field else ""
        return f"{self.location()}:{where} {self.message}{shown}"


def show_value(value: Any) -> str:
    """A short, single-line rendering of an offending value for messages."""
    text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    return text


class RepositoryInvalid(Exception):
    """Raised when a command needs a valid repository: run `relayops validate` to see why."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__(f"the repository has {len(findings)} validation error(s)")
