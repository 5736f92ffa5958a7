"""What every command that edits the repository shares: compute, validate, then write.

`relayops customer …` and `relayops dkim rotate` compute their files with the one
round-trip editor (`relayops.customer_edits` on `relayops.roundtrip`), make DKIM key
pairs in a scratch root, then `commit`: the loader validates the repository with the
changes laid over it (nothing on disk yet), and only a valid result is written
(`relayops.staging`). A refusal prints `relayops <command>: …`, exits 2 and writes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from relayops.commands.options import fail
from relayops.commands.repo import print_findings
from relayops.compile.dkim import DkimKeyError, generate_key, key_files
from relayops.loader import load_repo
from relayops.model import Repo
from relayops.model.secrets import RECIPIENTS_FILE
from relayops.roundtrip import RoundTripError
from relayops.staging import Changes, apply, created_files, scratch


def checked(kind: Any, value: str, what: str) -> str:
    """`value` validated as a model field type (a str); a refusal names what was wrong."""
    try:
        result: str = TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        reason = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
        fail(f"bad {what} {value!r}: {reason}")
    return result


def edited(make: Callable[[], str]) -> bytes:
    """The text a round-trip edit makes, as bytes to write; a refusal if it cannot."""
    try:
        return make().encode("utf-8")
    except RoundTripError as exc:
        fail(str(exc))


def commit(root: Path, changes: Changes, *, today: date) -> Repo:
    """Validate the repository as `changes` make it; write them only if it is valid."""
    result = load_repo(root, today=today, overlay=changes)
    if result.repo is None:
        print_findings(result.findings)
        fail(
            f"the change would leave the repository invalid ({len(result.findings)} "
            "error(s) above); nothing written"
        )
    apply(root, changes)
    return result.repo


def dkim_key_changes(root: Path, domain: str, selector: str) -> Changes:
    """The key pair's files, made as `relayops dkim generate` makes them; none if it exists.

    A domain removed and added again with its selector keeps its published key; a
    rotation back to an earlier selector finds its pair too.
    """
    files = key_files(root, domain, selector)
    if files.private_age.exists() and files.public_pem.exists():
        return {}
    for one, other in (
        (files.private_age, files.public_pem),
        (files.public_pem, files.private_age),
    ):
        if one.exists():
            fail(f"{one} exists without {other.name}: restore the pair or use another selector")
    inputs = [RECIPIENTS_FILE]
    with scratch(root, inputs) as base:
        try:
            generate_key(base, domain, selector)
        except DkimKeyError as exc:
            fail(str(exc).replace(str(base), str(root)))
        return created_files(base, inputs)
