"""What a policy file says, as plain data: the file's kind, its subjects and their values.

Pure: bytes in, data out. Past commits need not validate against today's models,
so the audit reads raw data (no pydantic) and never fails on a broken file: a
file that does not parse becomes an `Unparseable` value the history reports.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel

from relayops.model import AntiSpam, Customer, IspClass, Plan
from relayops.yamlfile import YamlError, parse

# policies/<file>.yaml -> (kind, the top-level key holding one entry per subject)
POLICY_FILES: dict[str, tuple[str, str | None]] = {
    "policies/plans.yaml": ("plan", "plans"),
    "policies/warmup.yaml": ("warmup", "schedules"),
    "policies/throttling.yaml": ("throttling", "classes"),
    "policies/antispam.yaml": ("antispam", None),
    "policies/service.yaml": ("service", None),
}
# Kinds with one file per subject, named by the file: a rename changes the subject's id.
PER_FILE_KINDS = ("customer", "notices", "inventory")


@dataclass(frozen=True)
class FileKind:
    kind: str  # customer, plan, antispam, warmup, throttling, service, notices, inventory
    subject: str | None  # the file's one subject (customer id…), None if it holds many
    container: str | None = None  # the key holding the subjects (plans, schedules, classes)


@dataclass(frozen=True)
class Unparseable:
    """A file that did not parse at some commit; `reason` says where and why."""

    reason: str


def classify(path: str) -> FileKind | None:
    """The kind of a policy repository file, None for a file the audit does not read."""
    pure = PurePosixPath(path)
    if path in POLICY_FILES:
        kind, container = POLICY_FILES[path]
        return FileKind(kind, None if container else kind, container)
    if pure.parent.as_posix() == "customers" and pure.suffix == ".yaml":
        return FileKind("customer", pure.stem)
    if pure.parent.as_posix() == "policies/notifications" and pure.suffix == ".txt":
        return FileKind("notices", pure.stem)
    if pure.parent.as_posix() == "inventory" and pure.suffix == ".py":
        return FileKind("inventory", pure.stem)
    return None


def read(kind: FileKind, data: bytes) -> Any:
    """The file's data, or Unparseable; customers' password hashes are fingerprinted."""
    try:
        if kind.kind == "notices":
            return _notice(data)
        if kind.kind == "inventory":
            return _inventory(data)
        value = parse(data).value
    except YamlError as exc:
        return Unparseable(f"line {exc.line} column {exc.column}: {exc.message}")
    except _Unreadable as exc:
        return Unparseable(str(exc))
    if kind.kind == "customer":
        return _redact_passwords(value)
    return value


def subjects(kind: FileKind, value: Any) -> dict[str, Any]:
    """Subject name -> its data: one per plan, schedule or ISP class; else the file's one.

    A field left out that has a plain default in the model reads as that default
    (`status: active`), so a suspension shows `active → suspended`, not `— → suspended`.
    """
    model = _DEFAULTS_FROM.get(kind.kind)
    if kind.container is None:
        return {kind.subject or kind.kind: _with_defaults(value, model)}
    if isinstance(value, dict) and isinstance(value.get(kind.container), dict):
        return {
            str(name): _with_defaults(data, model) for name, data in value[kind.container].items()
        }
    return {kind.kind: value}  # a malformed file: diff it whole rather than guess


# The models whose plain defaults (numbers, words, flags) fill in absent fields.
_DEFAULTS_FROM: dict[str, type[BaseModel]] = {
    "customer": Customer,
    "plan": Plan,
    "antispam": AntiSpam,
    "throttling": IspClass,
}


@cache
def _plain_defaults(model: type[BaseModel]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        default = info.get_default(call_default_factory=False)
        if isinstance(default, str | int | float | bool):  # StrEnum values are str
            defaults[name] = default.value if hasattr(default, "value") else default
    return defaults


def _with_defaults(value: Any, model: type[BaseModel] | None) -> Any:
    if model is None or not isinstance(value, dict):
        return value
    missing = {k: v for k, v in _plain_defaults(model).items() if k not in value}
    return {**value, **missing} if missing else value


class _Unreadable(Exception):
    pass


def fingerprint(password_hash: str) -> str:
    """`{SCHEME}#1a2b3c4d`: shows that a hash changed without printing it."""
    scheme = password_hash.split("}", 1)[0] + "}" if password_hash.startswith("{") else ""
    digest = hashlib.sha256(password_hash.encode()).hexdigest()[:8]
    return f"{scheme}#{digest}"


def _redact_passwords(value: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("users"), list):
        return value
    users = [
        {**user, "password": fingerprint(user["password"])}
        if isinstance(user, dict) and isinstance(user.get("password"), str)
        else user
        for user in value["users"]
    ]
    return {**value, "users": users}


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unreadable("is not UTF-8 text") from exc


def _notice(data: bytes) -> dict[str, str]:
    """A notification mail: `Subject: …`, an empty line, the body (as the loader reads it)."""
    head, sep, body = _text(data).partition("\n\n")
    if not head.startswith("Subject: ") or "\n" in head or not sep:
        raise _Unreadable("must start with one 'Subject: …' line, then an empty line")
    return {"subject": head[len("Subject: ") :], "body": body}


def _inventory(data: bytes) -> dict[str, Any]:
    """The literal assignments of a pyinfra inventory, read without running it.

    pyinfra executes inventories; an audit of past commits must not run old code,
    so we evaluate only literals and names bound to earlier literals (the
    standard library's `ast.literal_eval` resolves no names, hence by hand).
    """
    try:
        tree = ast.parse(_text(data))
    except SyntaxError as exc:
        raise _Unreadable(f"line {exc.lineno}: Python syntax error: {exc.msg}") from exc
    names: dict[str, Any] = {}
    for statement in tree.body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            try:
                names[statement.targets[0].id] = _literal(statement.value, names)
            except _NotLiteral:
                continue
    public = {k: v for k, v in names.items() if not k.startswith("_")}
    if "relays" in public:
        public["relays"] = _pyinfra_group(public["relays"])
    return public


class _NotLiteral(Exception):
    pass


def _literal(node: ast.expr, names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise _NotLiteral(node.id)
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item, names) for item in node.elts]
    if isinstance(node, ast.Dict):
        result: dict[Any, Any] = {}
        for key, item in zip(node.keys, node.values, strict=True):
            if key is None:
                raise _NotLiteral("**")
            result[_literal(key, names)] = _literal(item, names)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        operand = _literal(node.operand, names)
        if isinstance(operand, int | float):
            return -operand
    raise _NotLiteral(type(node).__name__)


def _pyinfra_group(value: Any) -> Any:
    """`(hosts, group_data)` with hosts `[(name, data)]` -> `{hosts: [{name, …data}], …group}`.

    Hosts keyed by name diff by name, so the paths read `relays.hosts[0].ssh_hostname`.
    """
    hosts, group = value, {}
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], list)
        and isinstance(value[1], dict)
    ):
        hosts, group = value
    if not isinstance(hosts, list):
        return value
    flat: list[Any] = []
    for entry in hosts:
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict):
            flat.append({"name": entry[0], **entry[1]})
        elif isinstance(entry, str):
            flat.append({"name": entry})
        else:
            return value
    return {"hosts": flat, **group}
