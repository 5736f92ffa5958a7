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
    for part in ("policies", "inventory", "schemas"):
        shutil.copytree(ROOT / part, out / part)
    (out / "customers").mkdir(parents=True)
    for n in range(customers):
        (out / "customers" / f"c{n:05d}.yaml").write_text(
            customer_yaml(n, overrides.get(n)), encoding="utf-8"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args()
    generate(args.out, args.customers)


if __name__ == "__main__":
    main()
