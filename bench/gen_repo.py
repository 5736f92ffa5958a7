"""Generate a large policy repository for the benchmarks.

    python bench/gen_repo.py OUT [--customers 10000]

10,000 customers give about 25,000 domains and 20,000 logins; policies and
inventories are the example repository's, so the result validates.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# One real hash for every login: validation checks its form, not its uniqueness.
HASH = (
    "{SHA512-CRYPT}$6$7ebd5fef52a51aab$peCJKyO8uijADYMLBH0vIMiW8KRDv0OZQwPgkc96eHACNyY."
    "Fc7VeqM3H26CuQw3gFsnf.GCm.eLB4boYrRsB/"
)
# Every generated sender domain gets this example key pair (hard links: 50,000 files in a
# second). Validation checks that each domain has its key files, not that keys differ.
STAND_IN_KEY = ("acme.example", "rly2026")
ZONES = ["Europe/Paris", "America/New_York", "UTC", "Asia/Tokyo", "Pacific/Chatham"]
POOLS = ["shared-eu", "shared-us"]


def customer_yaml(n: int, quota_override: int | None = None) -> str:
    domains = 2 + (n % 2 == 0)  # 25,000 domains for 10,000 customers
    logins = 2  # 20,000 logins for 10,000 customers
    lines = [
        "# yaml-language-server: $schema=../schemas/customer.schema.json",
        f"name: Customer {n}",
        f"contact: ops@c{n}.example",
        f"plan: {'business' if n % 3 else 'starter'}",
        f"timezone: {ZONES[n % len(ZONES)]}",
        "placement:",
        f"  pool: {POOLS[n % 2]}",
        "domains:",
    ]
    for d in range(domains):
        lines += [f"  - name: d{d}.c{n}.example", "    dkim: {selector: s1}"]
    if quota_override is not None:
        lines.append(f"quota_override: {quota_override}")
    lines.append("users:")
    for u in range(logins):
        lines += [f"  - login: c{n}-u{u}", f'    password: "{HASH}"']
    return "\n".join(lines) + "\n"


def generate(out: Path, customers: int, quota_overrides: dict[int, int] | None = None) -> None:
    """Write the repository; `quota_overrides` maps customer numbers to their own quota."""
    overrides = quota_overrides or {}
    if out.exists():
        shutil.rmtree(out)
    for part in ("policies", "inventory", "schemas", "lab"):
        shutil.copytree(ROOT / part, out / part)
    shutil.copytree(ROOT / "secrets", out / "secrets")
    (out / "customers").mkdir(parents=True)
    for n in range(customers):
        text = customer_yaml(n, overrides.get(n))
        (out / "customers" / f"c{n:05d}.yaml").write_text(text, encoding="utf-8")
        _link_keys(out, text)


def _link_keys(out: Path, customer: str) -> None:
    """Hard-link the stand-in key pair for each `- name: <domain>` of the customer's YAML."""
    dkim = out / "secrets" / "dkim"
    domain, selector = STAND_IN_KEY
    for line in customer.splitlines():
        if line.startswith("  - name: "):
            name = line.removeprefix("  - name: ")
            for suffix in ("key.age", "pub.pem"):
                source = dkim / f"{domain}.{selector}.{suffix}"
                (dkim / f"{name}.s1.{suffix}").hardlink_to(source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args()
    generate(args.out, args.customers)


if __name__ == "__main__":
    main()
