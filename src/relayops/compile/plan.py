"""What a change to the repository does: a semantic summary and per-host file diffs.

Pure: takes the two loaded repositories, their compiled hosts and the public keys,
returns a Plan that `report.py` prints as Markdown or JSON.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel

from relayops.compile.dns_records import (
    DnsRecord,
    domain_records,
    ip_records,
    published_keys,
    service_domain_records,
    service_keys,
)
from relayops.compile.files import HostConfig
from relayops.compile.managed import Entry, EntryKind, Manifest, compiled_manifest, removals
from relayops.compile.policy import warmup_stages
from relayops.compile.service_plan import ServiceChange, service_changes
from relayops.model import Customer, Inventory, Repo, Status

ChangeKind = Literal["added", "changed", "removed"]
# A diff longer than this many lines is cut: the PR comment stays readable and the
# full diff is one `relayops render` away.
MAX_DIFF_LINES = 400


@dataclass(frozen=True)
class CustomerChange:
    customer: str
    kind: str  # added, removed, suspended, reactivated, terminated, quota, plan, warmup, ...
    detail: str


@dataclass(frozen=True)
class PolicyChange:
    file: str  # repository-relative
    item: str  # plan / class / schedule name, or "" for a whole-file policy
    change: str  # added, removed, changed
    detail: str


@dataclass(frozen=True)
class DomainDns:
    domain: str
    customer: str
    reason: str
    records: list[DnsRecord]
    missing_key: bool


@dataclass(frozen=True)
class Risk:
    """Something in a change a reviewer must weigh before approving it."""

    kind: str  # one of the RISK_* names below
    customer: str
    detail: str


RISK_QUOTA = "quota raised more than 2×"
RISK_REACTIVATED = "customer re-activated"
RISK_COLD_IP = "dedicated IP without warm-up"
RISK_DNS = "DNS to publish before merge"
# A raise above this factor in one change is how abuse (a compromised account, a
# bought list) usually starts: a reviewer should see the customer's history first.
QUOTA_RISK_FACTOR = 2


@dataclass(frozen=True)
class FileChange:
    path: str
    change: ChangeKind
    diff: str  # unified diff; for secrets a note instead


@dataclass(frozen=True)
class HostDiff:
    host: str
    changes: list[FileChange]
    # What the deploy does to each service, Postfix output instances included.
    services: list[ServiceChange] = field(default_factory=list)


@dataclass
class Plan:
    base: str
    inventory: str
    customers: list[CustomerChange] = field(default_factory=list)
    policies: list[PolicyChange] = field(default_factory=list)
    dns: list[DomainDns] = field(default_factory=list)
    ips: list[DnsRecord] = field(default_factory=list)
    hosts: list[HostDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    risks: list[Risk] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.customers
            or self.policies
            or self.dns
            or self.ips
            or any(h.changes for h in self.hosts)
        )


PublicKeys = Callable[[str, str], bytes | None]  # (domain, selector) -> DER public key


def _status_kind(new: Status) -> str:
    """The name of a status transition, by where it lands."""
    if new is Status.TERMINATED:
        return "terminated"
    if new is Status.SUSPENDED:
        return "suspended"
    return "reactivated"


def customer_changes(base: Repo | None, head: Repo) -> list[CustomerChange]:
    old = base.customers if base else {}
    new = head.customers
    result: list[CustomerChange] = []
    for cid in sorted(set(old) | set(new)):
        if cid not in old:
            c = new[cid]
            result.append(
                CustomerChange(
                    cid,
                    "added",
                    f"{c.name}: plan {c.plan}, {head.effective_quota(c)}/day, "
                    f"{len(c.domains)} domain(s), {len(c.users)} login(s), status {c.status}",
                )
            )
            continue
        if cid not in new:
            result.append(CustomerChange(cid, "removed", f"{old[cid].name}: file deleted"))
            continue
        assert base is not None  # old is non-empty
        result.extend(_compare_customer(base, head, old[cid], new[cid]))
    return result


def _compare_customer(base: Repo, head: Repo, a: Customer, b: Customer) -> list[CustomerChange]:
    cid = b.id
    out: list[CustomerChange] = []
    if a.status is not b.status:
        reason = f": {b.status_reason}" if b.status_reason else ""
        out.append(CustomerChange(cid, _status_kind(b.status), f"{a.status} → {b.status}{reason}"))
    if a.plan != b.plan:
        out.append(CustomerChange(cid, "plan", f"{a.plan} → {b.plan}"))
    qa, qb = base.effective_quota(a), head.effective_quota(b)
    if qa != qb:
        out.append(CustomerChange(cid, "quota", f"{qa} → {qb} recipients/day"))
    if warmup_stages(base, a) != warmup_stages(head, b):
        ref = b.warmup
        now = f"schedule {ref.schedule} from {ref.start}" if ref else "none"
        out.append(CustomerChange(cid, "warmup", f"warm-up now {now}"))
    if a.placement != b.placement:
        out.append(CustomerChange(cid, "placement", f"{_placement(a)} → {_placement(b)}"))
    da, db = {d.name for d in a.domains}, {d.name for d in b.domains}
    for name in sorted(db - da):
        out.append(CustomerChange(cid, "domain added", name))
    for name in sorted(da - db):
        out.append(CustomerChange(cid, "domain removed", name))
    la, lb = {u.login for u in a.users}, {u.login for u in b.users}
    for login in sorted(lb - la):
        out.append(CustomerChange(cid, "login added", login))
    for login in sorted(la - lb):
        out.append(CustomerChange(cid, "login removed", login))
    changed_pw = sorted(
        u.login for u in b.users for v in a.users if u.login == v.login and u.password != v.password
    )
    for login in changed_pw:
        out.append(CustomerChange(cid, "password changed", login))
    return out


def _fields(a: BaseModel, b: BaseModel) -> str:
    """`field: old → new` for every top-level field that differs."""
    da, db = a.model_dump(mode="json"), b.model_dump(mode="json")
    return ", ".join(
        f"{k}: {da.get(k)} → {db.get(k)}"
        for k in sorted(set(da) | set(db))
        if da.get(k) != db.get(k)
    )


def _named(
    file: str, old: Mapping[str, BaseModel], new: Mapping[str, BaseModel]
) -> list[PolicyChange]:
    out: list[PolicyChange] = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(PolicyChange(file, name, "added", _fields_of(new[name])))
        elif name not in new:
            out.append(PolicyChange(file, name, "removed", ""))
        elif old[name] != new[name]:
            out.append(PolicyChange(file, name, "changed", _fields(old[name], new[name])))
    return out


def _fields_of(model: BaseModel) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(model.model_dump(mode="json").items()))


def policy_changes(base: Repo | None, head: Repo) -> list[PolicyChange]:
    """Changes to policies/: plans, throttling classes, warm-up schedules, the rest whole."""
    if base is None:
        return []
    out = _named("policies/plans.yaml", base.plans, head.plans)
    out += _named("policies/throttling.yaml", base.throttling, head.throttling)
    out += _named("policies/warmup.yaml", base.warmup, head.warmup)
    if base.antispam != head.antispam:
        out.append(PolicyChange("policies/antispam.yaml", "", "changed",
                                _fields(base.antispam, head.antispam)))  # fmt: skip
    if base.service != head.service:
        out.append(PolicyChange("policies/service.yaml", "", "changed",
                                _fields(base.service, head.service)))  # fmt: skip
    for kind in sorted(set(base.notifications) | set(head.notifications)):
        if base.notifications.get(kind) != head.notifications.get(kind):
            out.append(PolicyChange(f"policies/notifications/{kind}.txt", "", "changed",
                                    "text changed"))  # fmt: skip
    return out


def _placement(c: Customer) -> str:
    p = c.placement
    return f"pool {p.pool}" if p.pool else f"dedicated IP {p.dedicated_ip}"


def dns_changes(
    base: Repo | None,
    head: Repo,
    base_inventory: Inventory | None,
    inventory: Inventory,
    head_keys: PublicKeys,
    base_keys: PublicKeys,
) -> list[DomainDns]:
    """Records for every sender domain that is new or whose records changed, the service
    domain's own first (its `customer` is empty: the operator publishes them)."""
    result: list[DomainDns] = []
    service = service_dns(base, head, base_inventory, inventory, head_keys, base_keys)
    if service is not None:
        result.append(service)
    old_domains: dict[str, tuple[Customer, list[DnsRecord]]] = {}
    if base is not None and base_inventory is not None:
        for c in base.customers.values():
            for d in c.domains:
                keys = published_keys(d, base_keys)
                old_domains[d.name] = (c, domain_records(c, d, base_inventory, base.service, keys))
    for cid in sorted(head.customers):
        c = head.customers[cid]
        if not c.sends:
            continue
        for d in c.domains:
            keys = published_keys(d, head_keys)
            records = domain_records(c, d, inventory, head.service, keys)
            previous = old_domains.get(d.name)
            if previous is None:
                reason = "new sender domain"
            elif previous[0].id != cid:
                reason = f"moved from customer {previous[0].id}"
            elif previous[1] != records or not previous[0].sends:
                reason = "records changed" if previous[0].sends else "customer reactivated"
            else:
                continue
            missing = any(der is None for der in keys.values())
            result.append(DomainDns(d.name, cid, reason, records, missing))
    return result


def service_dns(
    base: Repo | None,
    head: Repo,
    base_inventory: Inventory | None,
    inventory: Inventory,
    head_keys: PublicKeys,
    base_keys: PublicKeys,
) -> DomainDns | None:
    """The service domain's SPF, DKIM, DMARC and TLS-RPT when new or changed."""
    keys = service_keys(head.service, head_keys)
    records = service_domain_records(inventory, head.service, keys)
    if base is None or base_inventory is None:
        reason = "service domain"
    else:
        old_keys = service_keys(base.service, base_keys)
        if service_domain_records(base_inventory, base.service, old_keys) == records:
            return None
        reason = "records changed"
    missing = any(der is None for der in keys.values())
    return DomainDns(head.service.domain, "", reason, records, missing)


def ip_changes(base_inventory: Inventory | None, inventory: Inventory) -> list[DnsRecord]:
    """PTR and A records of IPs that are new or whose address or PTR name changed."""
    old = set()
    if base_inventory is not None:
        old = {(ip.address, ip.ptr) for h in base_inventory.hosts for ip in h.ips}
    records: list[DnsRecord] = []
    for host in inventory.hosts:
        for ip in host.ips:
            if (ip.address, ip.ptr) not in old:
                records.extend(ip_records(ip))
    return sorted(records)


def _text(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines(keepends=True)


def unified(path: str, a: bytes | None, b: bytes | None) -> str:
    lines = list(
        difflib.unified_diff(
            _text(a) if a is not None else [],
            _text(b) if b is not None else [],
            fromfile=f"a{path}" if a is not None else "/dev/null",
            tofile=f"b{path}" if b is not None else "/dev/null",
            n=2,
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        cut = len(lines) - MAX_DIFF_LINES
        lines = [*lines[:MAX_DIFF_LINES], f"... {cut} more diff lines (relayops render)\n"]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _removed(entry: Entry, a: HostConfig) -> FileChange:
    """How the plan shows a removal; the deploy removes exactly these (compile/managed.py)."""
    files = {f.path: f for f in a.files}
    secrets = {s.path: s for s in a.secrets}
    after_queue = (
        f"; once the host's queue holds no mail of {entry.customer}" if entry.customer else ""
    )
    if entry.path in files:
        note = unified(entry.path, files[entry.path].content, None)
    elif entry.path in secrets:
        note = f"secret (was {secrets[entry.path].source}){after_queue}\n"
    elif entry.kind is EntryKind.MAILBOX:
        note = f"mailbox of {entry.customer}, deleted with all its mail{after_queue}\n"
    else:
        note = f"directory, removed when empty{after_queue}\n"
    return FileChange(entry.path, "removed", note)


def host_diff(host: str, a: HostConfig | None, b: HostConfig | None) -> HostDiff:
    files_a = {f.path: f for f in a.files} if a else {}
    files_b = {f.path: f for f in b.files} if b else {}
    changes: list[FileChange] = []
    for path in sorted(set(files_a) | set(files_b)):
        fa, fb = files_a.get(path), files_b.get(path)
        if fa is None and fb is not None:
            changes.append(FileChange(path, "added", unified(path, None, fb.content)))
        elif fa is not None and fb is not None:
            if fa.content != fb.content:
                changes.append(FileChange(path, "changed", unified(path, fa.content, fb.content)))
            elif fa.manifest() != fb.manifest():
                changes.append(
                    FileChange(path, "changed", f"metadata {fa.manifest()} → {fb.manifest()}\n")
                )
    secrets_a = {s.path: s for s in a.secrets} if a else {}
    secrets_b = {s.path: s for s in b.secrets} if b else {}
    for path in sorted(set(secrets_a) | set(secrets_b)):
        sa, sb = secrets_a.get(path), secrets_b.get(path)
        if sa is None and sb is not None:
            changes.append(FileChange(path, "added", f"secret, decrypted from {sb.source}\n"))
        elif sa is not None and sb is not None and sa != sb:
            changes.append(FileChange(path, "changed", f"secret, now from {sb.source}\n"))
    if a is not None:
        wanted = compiled_manifest(b) if b is not None else Manifest()
        changes += [_removed(e, a) for e in removals(compiled_manifest(a), wanted)]
    return HostDiff(host, sorted(changes, key=lambda c: c.path), service_changes(a, b))


def _quota_risk(base: Repo, head: Repo, a: Customer, b: Customer) -> Risk | None:
    before, after = base.effective_quota(a), head.effective_quota(b)
    if before > 0 and after > QUOTA_RISK_FACTOR * before:
        return Risk(RISK_QUOTA, b.id, f"{before} → {after} recipients/day (×{after / before:.1f})")
    return None


def _reactivation_risk(a: Customer, b: Customer) -> Risk | None:
    if a.sends or not b.sends:
        return None
    reason = f" (was: {a.status_reason})" if a.status_reason else ""
    return Risk(
        RISK_REACTIVATED,
        b.id,
        f"{a.status} → {b.status}{reason}: its {len(b.users)} login(s) can send again",
    )


def _warmup_risk(head: Repo, old: Customer | None, c: Customer, today: date) -> Risk | None:
    """A dedicated IP newly given to `c` whose warm-up is already past its first stage."""
    ip, ref = c.placement.dedicated_ip, c.warmup
    if ip is None or ref is None or not c.sends:
        return None
    if old is not None and old.placement == c.placement and old.warmup == c.warmup:
        return None  # nothing new about this IP in this change
    stages = head.warmup[ref.schedule].stages
    day = (today - ref.start).days + 1
    if day <= stages[0].last_day:
        return None  # starts at (or before) the schedule's first stage: a real warm-up
    last = stages[-1].last_day
    if day > last:
        ended = ref.start + timedelta(days=last - 1)
        return Risk(
            RISK_COLD_IP,
            c.id,
            f"{ip}: warm-up {ref.schedule} from {ref.start} ended on {ended}; "
            "the IP sends at full volume from its first day",
        )
    stage = next(s for s in stages if s.first_day <= day <= s.last_day)
    return Risk(
        RISK_COLD_IP,
        c.id,
        f"{ip}: warm-up {ref.schedule} from {ref.start} starts on day {day} "
        f"({stage.daily_cap}/day), skipping its first {stage.first_day - 1} day(s)",
    )


def risks(base: Repo | None, head: Repo, dns: list[DomainDns], today: date) -> list[Risk]:
    """What a reviewer must weigh: big quota raises, re-activations, cold IPs, DNS to publish.

    Pure; `today` is the day the change would deploy (the CLI passes the local date).
    """
    old = base.customers if base else {}
    found: list[Risk] = []
    for cid in sorted(head.customers):
        c = head.customers[cid]
        a = old.get(cid)
        if a is not None and base is not None:
            found += [r for r in (_quota_risk(base, head, a, c), _reactivation_risk(a, c)) if r]
        cold = _warmup_risk(head, a, c, today)
        if cold:
            found.append(cold)
    for d in dns:
        key = "; its DKIM key is not generated yet" if d.missing_key else ""
        who = "the customer publishes" if d.customer else "the operator publishes"
        found.append(
            Risk(
                RISK_DNS,
                d.customer,
                f"{d.domain} ({d.reason}): {len(d.records)} record(s) {who} "
                f"before this merges, or its mail fails SPF/DKIM/DMARC{key}",
            )
        )
    return found


def host_diffs(base: Mapping[str, HostConfig], head: Mapping[str, HostConfig]) -> list[HostDiff]:
    return [host_diff(h, base.get(h), head.get(h)) for h in sorted(set(base) | set(head))]


def make_plan(
    *,
    base_ref: str,
    inventory_name: str,
    base: Repo | None,
    head: Repo,
    base_hosts: Mapping[str, HostConfig],
    head_hosts: Mapping[str, HostConfig],
    head_keys: PublicKeys,
    base_keys: PublicKeys,
    notes: list[str] | None = None,
    today: date,
) -> Plan:
    inventory = head.inventories[inventory_name]
    base_inventory = base.inventories.get(inventory_name) if base else None
    dns = dns_changes(base, head, base_inventory, inventory, head_keys, base_keys)
    return Plan(
        base=base_ref,
        inventory=inventory_name,
        customers=customer_changes(base, head),
        policies=policy_changes(base, head),
        dns=dns,
        ips=ip_changes(base_inventory, inventory),
        hosts=host_diffs(base_hosts, head_hosts),
        notes=list(notes or []),
        risks=risks(base, head, dns, today),
    )
