"""The audit trail: commits and blobs from `gitlog` -> entries of field-level changes (pure).

Also the policy as it stood at a commit (`relayops audit --at`), with each
customer's effective quota.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from relayops.audit import diff, documents
from relayops.audit.documents import FileKind, Unparseable
from relayops.audit.gitlog import CommitRecord, FileChange

# "Merge pull request #12 from owner/branch" (GitHub's merge commit subject)
_MERGE_PR = re.compile(r"^Merge pull request #(\d+)\b")
# "Raise acme quota (#13)" (GitHub's squash-merge subject)
_SQUASH_PR = re.compile(r"\(#(\d+)\)\s*$")

# %G? letters -> what the audit reports; only G is what `git verify-commit` accepts.
SIGNATURE_STATES: dict[str, str] = {"G": "good", "N": "unsigned"}
SIGNATURE_DETAILS: dict[str, str] = {
    "G": "good signature",
    "B": "bad signature",
    "U": "good signature, unknown validity",
    "X": "good signature, expired",
    "Y": "good signature, expired key",
    "R": "good signature, revoked key",
    "E": "cannot be checked (missing key or allowed signers)",
    "N": "no signature",
}


@dataclass(frozen=True)
class Change:
    """One field of one subject changed by a commit.

    `change` is added, removed or changed for a field; for a whole subject
    (path "") it is added, removed, renamed (old and new ids), unparseable
    (the note holds the reason) or repaired (readable again after unparseable).
    """

    kind: str
    subject: str
    file: str
    path: str
    change: str
    old: Any = None
    new: Any = None
    note: dict[str, Any] | None = None
    previous_subject: str | None = None  # the id before a rename in this commit

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "subject": self.subject,
            "file": self.file,
            "path": self.path,
            "change": self.change,
        }
        if self.path or self.change == "renamed":  # a whole subject added/removed has no values
            if self.change != "added":
                data["old"] = self.old
            if self.change != "removed":
                data["new"] = self.new
        if self.note:
            data["note"] = self.note
        if self.previous_subject:
            data["previous_subject"] = self.previous_subject
        return data


@dataclass(frozen=True)
class Entry:
    """One first-parent commit and what it changed."""

    commit: str
    date: datetime
    author: str
    email: str
    pr: int | None
    signature: str  # good, bad or unsigned
    signature_code: str  # git's %G? letter
    signer: str  # who signed (as git reports it), "" when unsigned
    signing_key: str
    title: str
    changes: list[Change] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "date": self.date.isoformat(),
            "author": self.author,
            "email": self.email,
            "pr": self.pr,
            "signature": self.signature,
            "signature_detail": SIGNATURE_DETAILS.get(self.signature_code, self.signature_code),
            "signer": self.signer or None,
            "signing_key": self.signing_key or None,
            "title": self.title,
            "changes": [c.as_dict() for c in self.changes],
        }


def pr_number(subject: str) -> int | None:
    """The pull request a commit subject names: a merge commit's or a squash's `(#N)`."""
    match = _MERGE_PR.match(subject) or _SQUASH_PR.search(subject)
    return int(match.group(1)) if match else None


def signature_state(code: str) -> str:
    return SIGNATURE_STATES.get(code, "bad")


def needed_blobs(commits: Iterable[CommitRecord]) -> set[str]:
    """The blobs `build` will read: both sides of every policy file changed."""
    wanted: set[str] = set()
    for commit in commits:
        for change in commit.files:
            if change.old_path and documents.classify(change.old_path) and change.old_blob:
                wanted.add(change.old_blob)
            if change.new_path and documents.classify(change.new_path) and change.new_blob:
                wanted.add(change.new_blob)
    return wanted


def build(commits: Sequence[CommitRecord], blobs: Mapping[str, bytes]) -> list[Entry]:
    """One entry per commit, its changes in the order git lists the files."""
    cache: dict[tuple[str, str], Any] = {}

    def load(kind: FileKind, oid: str | None) -> Any:
        if oid is None:
            return None
        key = (kind.kind, oid)
        if key not in cache:
            cache[key] = documents.read(kind, blobs[oid])
        return cache[key]

    entries = []
    for commit in commits:
        changes: list[Change] = []
        for file_change in commit.files:
            changes += _file_changes(file_change, load)
        entries.append(
            Entry(
                commit=commit.sha,
                date=commit.date,
                author=commit.author_name,
                email=commit.author_email,
                pr=pr_number(commit.subject),
                signature=signature_state(commit.signature),
                signature_code=commit.signature,
                signer=commit.signer,
                signing_key=commit.signing_key,
                title=commit.subject,
                changes=changes,
            )
        )
    return entries


Loader = Callable[[FileKind, str | None], Any]


def _file_changes(change: FileChange, load: Loader) -> list[Change]:
    old_kind = documents.classify(change.old_path) if change.old_path else None
    new_kind = documents.classify(change.new_path) if change.new_path else None
    if old_kind is None and new_kind is None:
        return []
    if (
        change.status == "R"
        and old_kind is not None
        and new_kind is not None
        and old_kind.kind == new_kind.kind
        and old_kind.kind in documents.PER_FILE_KINDS
    ):
        return _renamed(change, old_kind, new_kind, load)
    result: list[Change] = []
    if old_kind is not None and (new_kind is None or change.status == "R"):
        # deleted, or renamed across kinds: the old file's subjects are removed
        result += _compare(old_kind, change.old_path or "", load(old_kind, change.old_blob), None)
        old_kind = None
    if new_kind is not None:
        old_value = load(old_kind, change.old_blob) if old_kind is not None else None
        result += _compare(
            new_kind, change.new_path or "", old_value, load(new_kind, change.new_blob)
        )
    return result


def _renamed(
    change: FileChange, old_kind: FileKind, new_kind: FileKind, load: Loader
) -> list[Change]:
    old_id, new_id = old_kind.subject or "", new_kind.subject or ""
    file = change.new_path or ""
    rename = Change(
        new_kind.kind, new_id, file, "", "renamed", old=old_id, new=new_id, previous_subject=old_id
    )
    moved = _compare(
        new_kind, file, load(old_kind, change.old_blob), load(new_kind, change.new_blob)
    )
    return [rename, *(replace(c, previous_subject=old_id) for c in moved)]


def _compare(kind: FileKind, file: str, old: Any, new: Any) -> list[Change]:
    """The changes between two versions of one file (None: the file does not exist)."""
    if isinstance(new, Unparseable):
        subject = kind.subject or kind.kind
        return [Change(kind.kind, subject, file, "", "unparseable", note={"reason": new.reason})]
    # After an unparseable version the last readable one is unknown: the subjects
    # are "repaired", their fields reported as added.
    repaired = isinstance(old, Unparseable)
    before = documents.subjects(kind, old) if old is not None and not repaired else {}
    after = documents.subjects(kind, new) if new is not None else {}
    changes: list[Change] = []
    for subject in [*before, *(s for s in after if s not in before)]:
        if subject not in after:
            changes.append(Change(kind.kind, subject, file, "", "removed"))
            changes += _fields(kind, subject, file, diff.fields(before[subject], "removed"))
        elif subject not in before:
            changes.append(
                Change(kind.kind, subject, file, "", "repaired" if repaired else "added")
            )
            changes += _fields(kind, subject, file, diff.fields(after[subject], "added"))
        else:
            found = diff.diff(before[subject], after[subject])
            changes += _fields(kind, subject, file, found, before[subject], after[subject])
    return changes


def _fields(
    kind: FileKind,
    subject: str,
    file: str,
    found: list[diff.FieldChange],
    before: Any = None,
    after: Any = None,
) -> list[Change]:
    return [
        Change(
            kind.kind,
            subject,
            file,
            c.path,
            c.change,
            c.old,
            c.new,
            _status_note(kind, c, before, after),
        )
        for c in found
    ]


def _status_note(
    kind: FileKind, change: diff.FieldChange, before: Any, after: Any
) -> dict[str, Any] | None:
    """A customer's status change shows its reason and date (from the newer version)."""
    if kind.kind != "customer" or change.path != "status" or change.change != "changed":
        return None
    source = after if isinstance(after, dict) and after.get("status_reason") else before
    if not isinstance(source, dict):
        return None
    note = {k: source[k] for k in ("status_reason", "status_date") if source.get(k) is not None}
    return note or None


# --- filters -------------------------------------------------------------------------


def matches_field(path: str, wanted: str) -> bool:
    """`--field domains` matches `domains[1].dkim.selector`; `--field status` matches status."""
    return path == wanted or path.startswith((f"{wanted}.", f"{wanted}["))


def select(
    entries: Iterable[Entry], *, customer: str | None = None, field_path: str | None = None
) -> list[Entry]:
    """The entries' changes for one customer and/or field; entries left empty are dropped."""
    selected = []
    for entry in entries:
        changes = [
            c
            for c in entry.changes
            if (
                customer is None
                or (c.kind == "customer" and customer in (c.subject, c.previous_subject))
            )
            and (field_path is None or matches_field(c.path, field_path))
        ]
        if changes:
            selected.append(replace(entry, changes=changes))
    return selected


# --- the policy at one commit ------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The policy files' data at one commit, by kind then subject."""

    commit: CommitRecord
    data: dict[str, dict[str, Any]]

    def customer(self, cid: str) -> dict[str, Any] | None:
        value = self.data.get("customer", {}).get(cid)
        if value is None:
            return None
        return customer_view(cid, value, self.data.get("plan", {}))


def snapshot(commit: CommitRecord, files: Mapping[str, bytes]) -> Snapshot:
    """Every policy file's data at `commit` (`files`: path -> contents)."""
    data: dict[str, dict[str, Any]] = {}
    for path in sorted(files):
        kind = documents.classify(path)
        if kind is None:
            continue
        value = documents.read(kind, files[path])
        if isinstance(value, Unparseable):
            data.setdefault("unparseable", {})[path] = value.reason
            continue
        data.setdefault(kind.kind, {}).update(documents.subjects(kind, value))
    return Snapshot(commit, data)


def customer_view(cid: str, value: Any, plans: Mapping[str, Any]) -> dict[str, Any]:
    """A customer's data plus its effective daily quota and where that quota comes from."""
    view: dict[str, Any] = {"id": cid}
    if isinstance(value, dict):
        view.update(value)
    quota, source = effective_quota(value, plans)
    view["effective_quota"] = quota
    view["quota_source"] = source
    return view


def effective_quota(customer: Any, plans: Mapping[str, Any]) -> tuple[int | None, str]:
    """The quota_override if set, else the plan's daily_quota (as `Repo.effective_quota`)."""
    if not isinstance(customer, dict):
        return None, "unreadable customer"
    override = customer.get("quota_override")
    if isinstance(override, int) and not isinstance(override, bool):
        return override, "quota_override"
    plan_name = customer.get("plan")
    plan = plans.get(plan_name) if isinstance(plan_name, str) else None
    if isinstance(plan, dict) and isinstance(plan.get("daily_quota"), int):
        return plan["daily_quota"], f"plan {plan_name}"
    return None, f"plan {plan_name!r} not found"


def in_range(
    commits: Iterable[CommitRecord], since: datetime | None, until: datetime | None
) -> list[CommitRecord]:
    """The commits landed within [since, until] (both inclusive)."""
    return [
        c
        for c in commits
        if (since is None or c.date >= since) and (until is None or c.date <= until)
    ]
