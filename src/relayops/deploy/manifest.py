"""The manifest the deploy leaves on each host: which paths it put there, and whose they are.

    /var/lib/relayops/managed.json
    {"version": 1,
     "entries": [{"path": "/etc/opendkim/keys/stark.example/s1.private",
                  "kind": "file", "customer": "stark"}, ...],
     "customers": {"stark": ["stark-shipping.example", "stark.example", ...]}}

The next deploy removes what this lists and no longer wants, so the file is read as
untrusted input: every path must be absolute and normalised, and a mailbox must be a
login's directory right under the mail root; anything else is a ManifestError and the
host's deploy removes nothing.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from relayops.compile.managed import Entry, EntryKind, Manifest, manifest
from relayops.hostlayout import MAIL_ROOT

MANIFEST_PATH = "/var/lib/relayops/managed.json"
VERSION = 1
# The model's login rule (model/fields.py): never "." or "..", never a "/".
_MAILBOX_NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")
_DOMAIN = re.compile(r"^[a-z0-9._-]{1,253}$")


class ManifestError(Exception):
    """The host's manifest cannot be trusted; the message says what is wrong and what to do."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    path: str
    kind: Literal["file", "directory", "mailbox"]
    customer: str | None = None

    @field_validator("path")
    @classmethod
    def _safe(cls, path: str) -> str:
        if (
            not path.startswith("/")
            or posixpath.normpath(path) != path
            or path == "/"
            or any(c in path for c in "\x00\n\r")
        ):
            raise ValueError("must be an absolute, normalised path other than /")
        return path

    @model_validator(mode="after")
    def _mailbox_under_root(self) -> _Entry:
        if self.kind == "mailbox":
            parent, name = posixpath.split(self.path)
            if parent != MAIL_ROOT or not _MAILBOX_NAME.match(name):
                raise ValueError(f"a mailbox must be {MAIL_ROOT}/<customer>, not {self.path}")
        return self


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    version: Literal[1]
    entries: list[_Entry]
    customers: dict[str, list[str]]

    @field_validator("customers")
    @classmethod
    def _domains(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for customer, domains in value.items():
            bad = [d for d in domains if not _DOMAIN.match(d)]
            if bad:
                raise ValueError(f"customer {customer}: not an ASCII domain name: {bad[0]!r}")
        return value


def dumps(value: Manifest) -> bytes:
    """Deterministic JSON (sorted, one entry per line): equal manifests are equal bytes."""
    entries = ",\n".join(
        "  " + json.dumps({"path": e.path, "kind": e.kind.value, "customer": e.customer})
        for e in value.entries
    )
    customers = json.dumps({c: list(d) for c, d in sorted(value.customers.items())})
    text = f'{{"version": {VERSION},\n "entries": [\n{entries}\n ],\n "customers": {customers}}}\n'
    return text.encode()


def loads(text: str) -> Manifest:
    """Parse and check a host's manifest (ManifestError naming the problem)."""
    try:
        parsed = _Manifest.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ManifestError(
            f"{MANIFEST_PATH}: {where}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from None
    entries = [Entry(e.path, EntryKind(e.kind), e.customer) for e in parsed.entries]
    if len({e.path for e in entries}) != len(entries):
        raise ManifestError(f"{MANIFEST_PATH}: a path is listed twice")
    return manifest(entries, parsed.customers)
