"""Load the policy repository: read every file, validate it, apply cross-file rules.

Every problem becomes a Finding with file:line:column, the field path and the
offending value; all of them are collected, none stops the others.
"""

from __future__ import annotations

import gc
import os
import re
import runpy
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from relayops import crossref, pysource, quarantine
from relayops.diagnostics import Finding, show_value
from relayops.model import Customer, Inventory, Notification, Repo
from relayops.model.inventory import KEY_PREFIX, GroupVars, HostVars
from relayops.model.policies import (
    AntiSpam,
    PlansFile,
    Service,
    ThrottlingFile,
    WarmupFile,
)
from relayops.model.released import ReleasedIp, ReleasedIpsFile
from relayops.policyd.notices import KINDS as NOTICE_KINDS
from relayops.yamlfile import Document, YamlError, parse

M = TypeVar("M", bound=BaseModel)

POLICY_FILES: dict[str, type[BaseModel]] = {
    "policies/plans.yaml": PlansFile,
    "policies/antispam.yaml": AntiSpam,
    "policies/warmup.yaml": WarmupFile,
    "policies/throttling.yaml": ThrottlingFile,
    "policies/service.yaml": Service,
}
NOTIFICATIONS = NOTICE_KINDS  # one template file per notice kind the daemon sends
INVENTORIES = ("production", "lab")
SCANNED_DIRS = ("customers", "policies", "inventory")
_PEM_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_PY_PASSWORD = re.compile(r"""["'](?:ssh_)?password["']\s*:""")


@dataclass
class LoadResult:
    repo: Repo | None
    findings: list[Finding] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class _Loader:
    root: Path
    today: date
    findings: list[Finding] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    inventory_hosts: dict[str, list[str]] = field(default_factory=dict)
    scanned: set[str] = field(default_factory=set)
    files: int = 0
    # A proposed change, validated before it is written (`relayops customer`):
    # repository-relative YAML path -> new content, None when deleted.
    overlay: Mapping[str, bytes | None] = field(default_factory=dict)
    require_dkim_keys: bool = True

    # -- reading -------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes:
        """The file's bytes, as the overlay has it if it does; FileNotFoundError if none."""
        if rel in self.overlay:
            data = self.overlay[rel]
            if data is None:
                raise FileNotFoundError(rel)
            return data
        with open(os.path.join(self.root, rel), "rb") as handle:
            return handle.read()

    def exists(self, rel: str) -> bool:
        if rel in self.overlay:
            return self.overlay[rel] is not None
        return (self.root / rel).exists()

    def with_overlay(self, folder: str, names: list[str]) -> list[str]:
        """File names in `folder` once the overlay's added and deleted files are counted."""
        if not self.overlay:
            return names
        prefix = folder + "/"
        changed = {
            rel[len(prefix) :]: data for rel, data in self.overlay.items() if rel.startswith(prefix)
        }
        present = set(names) | {n for n, d in changed.items() if d is not None and "/" not in n}
        return sorted(n for n in present if not (n in changed and changed[n] is None))

    def add(self, file: str, line: int, column: int, fld: str, msg: str, value: Any = None) -> None:
        shown = None if value is None else show_value(value)
        self.findings.append(Finding(file, line, column, fld, msg, shown))

    def read_yaml(self, rel: str) -> Document | None:
        try:
            data = self.read_bytes(rel)
        except FileNotFoundError:
            self.add(rel, 1, 1, "", "file is missing")
            return None
        except OSError as exc:
            self.add(rel, 1, 1, "", f"cannot be read: {exc.strerror}")
            return None
        self.files += 1
        self.scan_bytes(rel, data)
        try:
            doc = parse(data)
        except YamlError as exc:
            self.add(rel, exc.line, exc.column, "", exc.message)
            return None
        self.documents[rel] = doc
        if not isinstance(doc.value, dict):
            kind = "empty" if doc.value is None else f"a {type(doc.value).__name__}"
            line, column, _ = doc.position(())
            self.add(rel, line, column, "", f"is {kind}; expected a mapping of fields")
            return None
        return doc

    # -- validation ----------------------------------------------------------
    def validate(
        self, rel: str, model: type[M], data: Any, prefix: Sequence[str | int] = ()
    ) -> M | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            self.report(rel, model, exc, prefix)
            return None

    def report(
        self, rel: str, model: type[BaseModel], exc: ValidationError, prefix: Sequence[str | int]
    ) -> None:
        doc = self.documents.get(rel)
        for error in exc.errors(include_url=False):
            loc = [*prefix, *error["loc"]]
            message = _message(error, model, tuple(error["loc"]))
            value = None if error["type"] == "missing" else error.get("input")
            if doc is not None:
                line, column, matched = doc.position(loc)
                fld = _dotted(matched)
                if error["type"] == "missing" or len(matched) < len(loc):
                    tail = [s for s in loc[len(matched) :] if _is_field_segment(s)]
                    fld = _dotted([*matched, *tail[-1:]]) if tail else fld
            else:
                path = _inventory_path(loc)
                line, column = self.py_position(rel, value, path)
                fld = _dotted([s for s in path if _is_field_segment(s)])
            if error["type"] == "extra_forbidden" and isinstance(value, dict | list):
                value = None
            self.add(rel, line, column, fld, message, value)

    def violation(self, v: crossref.Violation) -> None:
        doc = self.documents.get(v.file)
        if doc is not None:
            line, column, matched = doc.position(v.path)
            fld = _dotted(matched)
        else:
            line, column = self.py_position(v.file, v.value, v.path)
            fld = _dotted(list(v.path))
        self.add(v.file, line, column, fld, v.message, v.value)

    def py_position(self, rel: str, value: Any, path: Sequence[str | int] = ()) -> tuple[int, int]:
        """Best position in a Python inventory: the line quoting the value.

        The search starts at the host the path names (`relays[h]...`), so a value
        repeated under another host is found where it is wrong.
        """
        source = self.sources.get(rel)
        if source is None:
            return 1, 1
        return pysource.position(source, self.inventory_hosts.get(rel, []), value, path)

    # -- files ---------------------------------------------------------------
    def customers(self) -> dict[str, Customer]:
        result: dict[str, Customer] = {}
        folder = self.root / "customers"
        if not folder.is_dir():
            self.add("customers/", 1, 1, "", "folder is missing")
            return result
        names = self.with_overlay(
            "customers", sorted(e.name for e in os.scandir(folder) if e.is_file())
        )
        for name in names:
            rel = f"customers/{name}"
            if not name.endswith(".yaml"):
                if not name.startswith("."):
                    self.add(rel, 1, 1, "", "is not a .yaml file; customers/ holds <id>.yaml only")
                continue
            doc = self.read_yaml(rel)
            if doc is None:
                continue
            data = doc.value
            cid = name[: -len(".yaml")]
            if "id" in data:
                line, column, _ = doc.position(("id",))
                self.add(rel, line, column, "id", "remove it: the customer id is the file name")
                continue
            customer = self.validate(rel, Customer, {"id": cid, **data})
            if customer is not None:
                result[cid] = customer
        return result

    def policy(self, rel: str) -> BaseModel | None:
        doc = self.read_yaml(rel)
        if doc is None:
            return None
        return self.validate(rel, POLICY_FILES[rel], doc.value)

    def released_ips(self) -> tuple[list[ReleasedIp], list[int]]:
        """The released-IP ledger and each entry's line; absent means nothing released."""
        rel = quarantine.LEDGER_FILE
        if not self.exists(rel):
            return [], []
        doc = self.read_yaml(rel)
        ledger = None if doc is None else self.validate(rel, ReleasedIpsFile, doc.value)
        if doc is None or ledger is None:
            return [], []
        lines = [doc.position(("released", i))[0] for i in range(len(ledger.released))]
        return list(ledger.released), lines

    def notifications(self) -> dict[str, Notification]:
        result: dict[str, Notification] = {}
        for kind in NOTIFICATIONS:
            rel = f"policies/notifications/{kind}.txt"
            try:
                data = (self.root / rel).read_bytes()
                text = data.decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self.add(rel, 1, 1, "", f"cannot be read as UTF-8 text: {exc}")
                continue
            self.files += 1
            self.scan_bytes(rel, data)
            head, sep, body = text.partition("\n\n")
            if not head.startswith("Subject: ") or "\n" in head or not sep:
                self.add(rel, 1, 1, "", "must start with one 'Subject: …' line, then an empty line")
                continue
            result[kind] = Notification(subject=head[len("Subject: ") :], body=body)
        return result

    def inventory(self, name: str) -> Inventory | None:
        rel = f"inventory/{name}.py"
        path = self.root / rel
        try:
            raw = path.read_bytes()
            self.sources[rel] = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.add(rel, 1, 1, "", f"cannot be read: {exc}")
            return None
        self.files += 1
        self.scan_bytes(rel, raw)
        try:
            # pyinfra executes inventory files as Python too; we read the same data.
            namespace = runpy.run_path(str(path))
        except Exception as exc:  # any error in operator code is a finding, not a crash
            line = getattr(exc, "lineno", None) or pysource.traceback_line(exc, str(path))
            self.add(rel, line, 1, "", f"cannot be executed: {type(exc).__name__}: {exc}")
            return None
        relays = namespace.get("relays")
        hosts, group = pysource.pyinfra_group(relays)
        if hosts is None:
            self.add(
                rel,
                1,
                1,
                "relays",
                "must define `relays` as a list of (name, data) tuples, "
                "optionally as (hosts, group_data)",
            )
            return None
        self.inventory_hosts[rel] = [str(e[0] if isinstance(e, tuple) and e else e) for e in hosts]
        group_vars = self.inventory_vars(rel, GroupVars, group, ())
        data: dict[str, Any] = {"name": name, "path": path, "hosts": []}
        if group_vars is not None:
            data.update(
                shared_counters=group_vars.relayops_shared_counters,
                dnsbl_zones=group_vars.relayops_dnsbl_zones,
                age_identity=group_vars.relayops_age_identity,
                ca_bundle=group_vars.relayops_ca_bundle,
                check_nameserver=group_vars.relayops_check_nameserver,
            )
        complete = group_vars is not None
        for index, entry in enumerate(hosts):
            host_name, host_data = (
                entry if isinstance(entry, tuple) and len(entry) == 2 else (entry, {})
            )
            if not isinstance(host_data, dict):
                host_data = {}
            host_vars = self.inventory_vars(rel, HostVars, host_data, ("relays", index))
            if host_vars is None:
                complete = False
                continue
            data["hosts"].append(
                {
                    "name": host_name,
                    "fqdn": host_name,
                    "ssh_hostname": host_data.get("ssh_hostname", host_name),
                    "ips": host_vars.relayops_ips,
                    "tls": host_vars.relayops_tls
                    or (group_vars.relayops_tls if group_vars else "acme"),
                }
            )
        if not complete:
            return None
        inventory = self.validate(rel, Inventory, data)
        if inventory is not None:
            for v in crossref.inventory_rules(inventory, rel):
                self.violation(v)
        return inventory

    def inventory_vars(
        self, rel: str, model: type[M], data: dict[str, Any], prefix: tuple[str | int, ...]
    ) -> M | None:
        """The `relayops_*` keys of one host's or the group's data, validated against their
        declaration (model/inventory.py); other keys are pyinfra's."""
        ours = {k: v for k, v in data.items() if isinstance(k, str) and k.startswith(KEY_PREFIX)}
        try:
            return model.model_validate(ours)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = [*prefix, *error["loc"]]
                fld = _dotted([s for s in loc if _is_field_segment(s)])
                if error["type"] == "extra_forbidden":
                    key = str(error["loc"][0])
                    line, column = self.py_position(rel, key, loc)
                    declared = ", ".join(model.model_fields)
                    where = "a host's data" if model is HostVars else "the relays group's data"
                    self.add(
                        rel,
                        line,
                        column,
                        fld,
                        f"unknown inventory key; keys {where} may set: {declared} "
                        "(declared in src/relayops/model/inventory.py)",
                    )
                    continue
                value = None if error["type"] == "missing" else error.get("input")
                line, column = self.py_position(rel, value, loc)
                self.add(rel, line, column, fld, _message(error, model, tuple(error["loc"])), value)
            return None

    def secrets(self) -> None:
        """No private key or plaintext password may sit in the reviewed, unencrypted files."""
        for top in SCANNED_DIRS:
            base = self.root / top
            if not base.is_dir():
                continue
            for dirpath, _dirs, filenames in os.walk(base):
                # strings, not Paths: this walks every customer file only to skip it
                rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
                for filename in filenames:
                    rel = f"{rel_dir}/{filename}"
                    if rel in self.scanned or rel in self.overlay:
                        continue
                    try:
                        with open(os.path.join(dirpath, filename), "rb") as handle:
                            self.scan_bytes(rel, handle.read())
                    except OSError:
                        continue

    def scan_bytes(self, rel: str, data: bytes) -> None:
        self.scanned.add(rel)
        match = _PEM_KEY.search(data)
        if match:
            line = data[: match.start()].count(b"\n") + 1
            self.add(
                rel,
                line,
                1,
                "",
                "contains a PEM private key: store keys encrypted under secrets/ "
                "(relayops dkim generate)",
            )
        if rel.endswith(".py"):
            text = data.decode("utf-8", "replace")
            for number, line_text in enumerate(text.splitlines(), start=1):
                hit = _PY_PASSWORD.search(line_text)
                if hit:
                    self.add(
                        rel,
                        number,
                        hit.start() + 1,
                        "",
                        "contains a password: use SSH keys for hosts, never a password "
                        "in the inventory",
                    )


def load_repo(
    root: Path,
    *,
    today: date | None = None,
    overlay: Mapping[str, bytes | None] | None = None,
    require_dkim_keys: bool = True,
) -> LoadResult:
    """Read and validate the repository at `root`; `today` is the clock for dated rules.

    `overlay` (path -> content, None for deleted) replaces YAML files of customers/ and
    policies/ as read, so a change is validated before it is written.
    `require_dkim_keys=False` waives only the rule that every sender domain has its key
    pair under secrets/ (for `relayops dkim generate --missing`, which writes them).
    """
    loader = _Loader(
        root=root,
        today=today or datetime.now(UTC).date(),
        overlay=overlay or {},
        require_dkim_keys=require_dkim_keys,
    )
    # Loading builds hundreds of thousands of long-lived objects and no cycles worth
    # collecting: the cyclic GC's repeated full scans would cost a third of the time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(loader, root)
    finally:
        if gc_was_enabled:
            gc.enable()


def inventory_names(root: Path) -> list[str]:
    """Every `inventory/*.py` is an inventory, named by its stem (`lab`, `production`)."""
    folder = root / "inventory"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith(("_", ".")))


def _load(loader: _Loader, root: Path) -> LoadResult:
    customers = loader.customers()
    policies = {rel: loader.policy(rel) for rel in POLICY_FILES}
    notifications = loader.notifications()
    released_ips, ledger_lines = loader.released_ips()
    names = inventory_names(root)
    if not names:
        loader.add("inventory/", 1, 1, "", "no inventory: add inventory/<name>.py (pyinfra)")
    inventories = {name: loader.inventory(name) for name in names}
    loader.secrets()

    plans = typing.cast(PlansFile | None, policies["policies/plans.yaml"])
    warmup = typing.cast(WarmupFile | None, policies["policies/warmup.yaml"])
    throttling = typing.cast(ThrottlingFile | None, policies["policies/throttling.yaml"])
    antispam = typing.cast(AntiSpam | None, policies["policies/antispam.yaml"])
    service = typing.cast(Service | None, policies["policies/service.yaml"])

    rules: list[Iterable[crossref.Violation]] = [
        crossref.unique_domains(customers),
        crossref.unique_logins(customers),
        crossref.notification_rules(notifications),
    ]
    if loader.require_dkim_keys:
        rules.append(crossref.dkim_key_rules(customers, loader.exists))
    if plans is not None:
        rules.append(crossref.plan_rules(customers, plans.plans))
    if throttling is not None:
        rules.append(crossref.throttling_rules(throttling.classes))
    if warmup is not None and throttling is not None:
        rules.append(crossref.warmup_rules(customers, warmup.schedules, set(throttling.classes)))
    for inventory in inventories.values():
        if inventory is not None:
            rules.append(crossref.placement_rules(customers, inventory))
            rel = f"inventory/{inventory.name}.py"
            rules.append(crossref.counters_rules(customers, inventory, rel))
            rules.append(crossref.identity_rules(inventory, rel, root))
    rules.append(
        quarantine.quarantine_rules(
            customers, released_ips, today=loader.today, ledger_lines=ledger_lines
        )
    )
    for violations in rules:
        for v in violations:
            loader.violation(v)

    findings = sorted(set(loader.findings))
    complete = (
        not findings
        and plans is not None
        and warmup is not None
        and throttling is not None
        and antispam is not None
        and service is not None
        and all(inv is not None for inv in inventories.values())
    )
    repo = None
    if complete:
        assert plans and warmup and throttling and antispam and service  # for mypy
        repo = Repo(
            root=root,
            customers=customers,
            plans=dict(plans.plans),
            antispam=antispam,
            warmup=dict(warmup.schedules),
            throttling=dict(throttling.classes),
            service=service,
            notifications=notifications,
            inventories={k: v for k, v in inventories.items() if v is not None},
            released_ips=released_ips,
            warmup_advance=warmup.advance,
        )
    return LoadResult(repo=repo, findings=findings, files=loader.files)


# -- helpers -------------------------------------------------------------------
_INVENTORY_NAMES = {"hosts": "relays", "ips": "relayops_ips", "tls": "relayops_tls"}


def _inventory_path(loc: Sequence[str | int]) -> list[str | int]:
    """Pydantic's loc in the Inventory model, in the inventory file's own words."""
    return [_INVENTORY_NAMES.get(s, s) if isinstance(s, str) else s for s in loc]


def _is_field_segment(segment: str | int) -> bool:
    # pydantic adds segments such as "function-after[...]" or "list[...]" for unions
    return isinstance(segment, int) or ("[" not in segment and "-" not in segment)


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += ("." if text else "") + segment
    return text


def _message(error: Any, model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    kind = error["type"]
    msg = str(error["msg"])
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, loc[:-1])
        return "unknown field" + (f"; accepted: {', '.join(allowed)}" if allowed else "")
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg[:1].lower() + msg[1:]


def _allowed_fields(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names accepted at `loc`, found by walking the model's annotations."""
    current: Any = model
    for segment in loc:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(segment))
            if info is None:
                return []
            current = info.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _strip(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [n for n in current.model_fields if not (current is Customer and n == "id")]
    return []


def _strip(annotation: Any) -> Any:
    """Remove Annotated[...] and `| None` around a single type."""
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation
