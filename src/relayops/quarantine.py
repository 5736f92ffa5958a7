"""The released-IP quarantine: no customer is placed on a dedicated IP given back less
than a year ago.

Releases come from the ledger (`policies/released-ips.yaml`, written by `relayops
customer terminate` and `swap-ip`) and, for repositories older than the ledger,
from terminated customers' files still present. Pure functions over validated
models, like `crossref`; the loader turns a violation's path into file:line:column.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from relayops.crossref import Violation, customer_file
from relayops.model import Customer, Repo, Status
from relayops.model.released import ReleasedIp
from relayops.yamlfile import YamlError, parse

LEDGER_FILE = "policies/released-ips.yaml"
# A released IP keeps its reputation (good or bad) for a year: the services we
# model do not hand it to another customer before then.
IP_QUARANTINE = timedelta(days=365)


@dataclass(frozen=True)
class Release:
    ip: str
    released: date
    customer: str
    where: str  # where it is recorded, for the reader: "policies/released-ips.yaml:5"

    @property
    def until(self) -> date:
        """The first day the IP may serve another customer."""
        return self.released + IP_QUARANTINE


def releases(
    customers: Mapping[str, Customer],
    ledger: Sequence[ReleasedIp],
    ledger_lines: Sequence[int] = (),
) -> list[Release]:
    """Every known release: the ledger's entries, then terminated customers' IPs.

    `ledger_lines[i]` is the line of entry i in the ledger file, when known.
    """
    found = [
        Release(
            entry.ip,
            entry.released,
            entry.customer,
            f"{LEDGER_FILE}:{ledger_lines[i]}" if i < len(ledger_lines) else LEDGER_FILE,
        )
        for i, entry in enumerate(ledger)
    ]
    for cid in sorted(customers):
        customer = customers[cid]
        ip = customer.placement.dedicated_ip
        if customer.status is Status.TERMINATED and ip and customer.status_date is not None:
            found.append(
                Release(ip, customer.status_date, cid, f"{customer_file(cid)}: terminated")
            )
    return found


def quarantined(found: Sequence[Release], *, today: date) -> dict[str, Release]:
    """IP name -> its latest release, for the IPs still in quarantine on `today`."""
    latest: dict[str, Release] = {}
    for release in found:
        if today < release.until:
            current = latest.get(release.ip)
            if current is None or current.released < release.released:
                latest[release.ip] = release
    return latest


def quarantine_rules(
    customers: Mapping[str, Customer],
    ledger: Sequence[ReleasedIp],
    *,
    today: date,
    ledger_lines: Sequence[int] = (),
) -> Iterator[Violation]:
    """Ledger dates are not in the future; no one holds an IP released < 365 days ago."""
    for i, entry in enumerate(ledger):
        if entry.released > today:
            yield Violation(
                LEDGER_FILE,
                ("released", i, "released"),
                f"release date is in the future (today is {today})",
                entry.released.isoformat(),
            )
    held = quarantined(releases(customers, ledger, ledger_lines), today=today)
    for cid in sorted(customers):
        customer = customers[cid]
        ip = customer.placement.dedicated_ip
        if ip is None or customer.status is Status.TERMINATED:
            continue
        release = held.get(ip)
        if release is not None:
            yield Violation(
                customer_file(cid),
                ("placement", "dedicated_ip"),
                f"IP was released by customer '{release.customer}' on {release.released} "
                f"({release.where}); it cannot be reused before {release.until}",
                ip,
            )


def ledger_lines(data: bytes) -> list[int]:
    """The line of each entry of a ledger file's text, to name it in messages."""
    try:
        doc = parse(data)
    except YamlError:
        return []
    entries = doc.value.get("released") if isinstance(doc.value, dict) else None
    count = len(entries) if isinstance(entries, list) else 0
    return [doc.position(("released", i))[0] for i in range(count)]


def unavailable_reason(
    repo: Repo, name: str, *, today: date, ledger_lines: Sequence[int] = ()
) -> str | None:
    """Why the IP `name` cannot take a new dedicated customer today; None when it can.

    Free means: a dedicated IP of that name in every inventory, held by no customer
    that is not terminated, and not released less than a year ago.
    """
    for inventory in repo.inventories.values():
        found = inventory.ip(name)
        if found is None:
            return f"there is no IP '{name}' in {inventory.path.name}"
        if not found[1].dedicated:
            return f"IP '{name}' is in pool '{found[1].pool}' in {inventory.path.name}"
    for cid in sorted(repo.customers):
        customer = repo.customers[cid]
        if customer.placement.dedicated_ip == name and customer.status is not Status.TERMINATED:
            return f"IP '{name}' serves customer '{cid}'"
    known = releases(repo.customers, repo.released_ips, ledger_lines)
    release = quarantined(known, today=today).get(name)
    if release is not None:
        return (
            f"IP '{name}' was released by customer '{release.customer}' on {release.released} "
            f"({release.where}); it cannot be reused before {release.until}"
        )
    return None


def free_dedicated_ips(repo: Repo, *, today: date, ledger_lines: Sequence[int] = ()) -> list[str]:
    """Names of the dedicated IPs a customer may be placed on today, sorted."""
    names = {
        ip.name
        for inventory in repo.inventories.values()
        for host in inventory.hosts
        for ip in host.ips
        if ip.dedicated
    }
    return sorted(
        n
        for n in names
        if unavailable_reason(repo, n, today=today, ledger_lines=ledger_lines) is None
    )
