"""Edits of a customer file and of the released-IP ledger, on round-trip documents.

Pure: text in, text out (the command checks the request against the repository,
then validates the result before anything is written). Keys a change adds go
where the example files keep them (`FIELD_ORDER`), so a new key reads in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from relayops.model import Status
from relayops.model.fields import normalize_domain
from relayops.roundtrip import RoundTripError, block_seq, dump, flow_map, load_mapping, scalar

SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/customer.schema.json\n"
FIELD_ORDER = (
    "name",
    "contact",
    "status",
    "status_reason",
    "status_date",
    "plan",
    "timezone",
    "quota_override",
    "placement",
    "warmup",
    "domains",
    "users",
)
STATUS_FIELDS = ("status", "status_reason", "status_date")
LEDGER_HEADER = (
    "# yaml-language-server: $schema=../schemas/released-ips.schema.json\n"
    "# Dedicated IPs given back: none serves another customer for 365 days after its release.\n"
    "# Written by `relayops customer terminate` and `relayops customer swap-ip`; entries stay\n"
    "# when the old customer's file is deleted, so the quarantine outlives it.\n"
)


def set_field(doc: CommentedMap, key: str, value: Any) -> None:
    """Set `key`, inserting a new key after the last field that precedes it in FIELD_ORDER."""
    if key in doc:
        doc[key] = value
        return
    rank = FIELD_ORDER.index(key)
    position = 0
    for index, existing in enumerate(doc):
        if existing in FIELD_ORDER and FIELD_ORDER.index(existing) < rank:
            position = index + 1
    doc.insert(position, key, value)


def new_customer(
    *,
    name: str,
    contact: str,
    plan: str,
    timezone: str,
    pool: str | None,
    dedicated_ip: str | None,
    warmup: str | None,
    warmup_start: date | None,
) -> str:
    """A new customer file in the examples' layout, without domains or logins yet."""
    doc = CommentedMap()
    doc["name"] = scalar(name)
    doc["contact"] = scalar(contact)
    doc["plan"] = scalar(plan)
    doc["timezone"] = scalar(timezone)
    doc["placement"] = CommentedMap(
        {"pool": scalar(pool)} if pool is not None else {"dedicated_ip": scalar(dedicated_ip or "")}
    )
    if warmup is not None:
        doc["warmup"] = CommentedMap({"schedule": scalar(warmup), "start": warmup_start})
    doc["domains"] = CommentedSeq()
    doc["users"] = CommentedSeq()
    return SCHEMA_LINE + dump(doc)


def _edit(text: str, name: str) -> CommentedMap:
    return load_mapping(text, name=name)


def add_domain(text: str, name: str, *, domain: str, selector: str) -> str:
    doc = _edit(text, name)
    if "domains" not in doc:
        set_field(doc, "domains", CommentedSeq())
    entry = CommentedMap({"name": scalar(domain), "dkim": flow_map(selector=scalar(selector))})
    block_seq(doc, "domains").append(entry)
    return dump(doc)


def set_dkim(text: str, name: str, *, domain: str, dkim: Mapping[str, Any]) -> str:
    """`domain`'s `dkim` mapping made `dkim` (a rotation step), edited in place: a block
    stays a block and a one-line mapping one line, comments stay; the nested selectors
    (`next`, `previous`) are written on one line each."""
    doc = _edit(text, name)
    for entry in doc.get("domains") or []:
        if normalize_domain(str(entry["name"])) == domain:
            current = entry.get("dkim")
            if not isinstance(current, CommentedMap):
                entry["dkim"] = current = flow_map()
            for key in [k for k in current if k not in dkim]:
                del current[key]
            for key, value in dkim.items():
                current[key] = _dkim_value(value)
            return dump(doc)
    raise RoundTripError(f"{name} has no sender domain {domain!r}")


def _dkim_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return flow_map(**{k: _dkim_value(v) for k, v in value.items()})
    if isinstance(value, str):
        return scalar(value)  # a digits-only selector stays a string
    return value  # retire_after: a date


def remove_domain(text: str, name: str, *, domain: str) -> str:
    doc = _edit(text, name)
    seq = doc.get("domains") or []
    keep = [i for i, d in enumerate(seq) if normalize_domain(str(d["name"])) != domain]
    for index in reversed(range(len(seq))):
        if index not in keep:
            del seq[index]
    return dump(doc)


def add_login(text: str, name: str, *, login: str, password_hash: str) -> str:
    doc = _edit(text, name)
    if "users" not in doc:
        set_field(doc, "users", CommentedSeq())
    entry = CommentedMap(
        {"login": scalar(login), "password": DoubleQuotedScalarString(password_hash)}
    )
    block_seq(doc, "users").append(entry)
    return dump(doc)


def remove_login(text: str, name: str, *, login: str) -> str:
    doc = _edit(text, name)
    seq = doc.get("users") or []
    for index in reversed(range(len(seq))):
        if seq[index]["login"] == login:
            del seq[index]
    return dump(doc)


def set_quota(text: str, name: str, *, quota: int) -> str:
    doc = _edit(text, name)
    set_field(doc, "quota_override", quota)
    return dump(doc)


def set_status(text: str, name: str, *, status: Status, reason: str, day: date) -> str:
    doc = _edit(text, name)
    set_field(doc, "status", status.value)
    set_field(doc, "status_reason", scalar(reason))
    set_field(doc, "status_date", day)
    return dump(doc)


def clear_status(text: str, name: str) -> str:
    """Back to active: an active customer has no status, reason or date."""
    doc = _edit(text, name)
    for key in STATUS_FIELDS:
        doc.pop(key, None)
    return dump(doc)


def move_dedicated_ip(text: str, name: str, *, ip: str, warmup_start: date) -> str:
    """Put the customer on another dedicated IP; its warm-up starts again on the new one."""
    doc = _edit(text, name)
    doc["placement"]["dedicated_ip"] = scalar(ip)
    doc["warmup"]["start"] = warmup_start
    return dump(doc)


def ledger_with(text: str | None, *, ip: str, released: date, customer: str, reason: str) -> str:
    """The ledger with one more release appended (a new ledger when `text` is None)."""
    name = "policies/released-ips.yaml"
    doc = _edit(LEDGER_HEADER + "released: []\n" if text is None else text, name)
    entry = CommentedMap(
        {
            "ip": scalar(ip),
            "released": released,
            "customer": scalar(customer),
            "reason": DoubleQuotedScalarString(reason),
        }
    )
    block_seq(doc, "released").append(entry)
    return dump(doc)


def set_warmup_stage(text: str, name: str, *, stage: int) -> str:
    """Hold the dedicated IP's warm-up at `stage` (what `relayops warmup advance` writes)."""
    doc = _edit(text, name)
    warmup = doc.get("warmup")
    if not isinstance(warmup, CommentedMap):
        raise RoundTripError(f"{name}: no warmup mapping to set a stage in")
    if "stage" in warmup:
        warmup["stage"] = stage
    else:
        keys = list(warmup)
        position = keys.index("start") + 1 if "start" in keys else len(keys)
        warmup.insert(position, "stage", stage)
    return dump(doc)
