"""terminate and swap-ip write the ledger; the quarantine then outlives the customer's file."""

from __future__ import annotations

from pathlib import Path

from customer.helpers import Run, add_free_dedicated_ip


def _new_on(ip: str) -> tuple[str, ...]:
    return (
        "new", "newco", "--name", "NewCo", "--contact", "ops@newco.example", "--plan", "pro",
        "--timezone", "UTC", "--dedicated-ip", ip, "--warmup", "standard-5w",
    )  # fmt: skip


def test_terminated_ip_stays_quarantined_after_the_file_is_deleted(
    run: Run, example_repo: Path
) -> None:
    assert run("terminate", "globex", "--reason", "contract ended").exit_code == 0
    (example_repo / "customers/globex.yaml").unlink()  # its data goes; the ledger stays

    day_364 = run(*_new_on("dedicated-1"), today="2027-11-22")
    assert day_364.exit_code == 2
    assert day_364.stderr == (
        "relayops customer new: IP 'dedicated-1' was released by customer 'globex' on "
        "2026-11-23 (policies/released-ips.yaml:10); it cannot be reused before 2027-11-23; "
        "free dedicated IPs: dedicated-2\n"
    )
    assert not (example_repo / "customers/newco.yaml").exists()

    day_365 = run(*_new_on("dedicated-1"), today="2027-11-23")
    assert day_365.exit_code == 0, day_365.stderr
    assert "  dedicated_ip: dedicated-1\n" in (example_repo / "customers/newco.yaml").read_text()


def test_swapped_ip_cannot_be_taken_back_within_a_year(run: Run, example_repo: Path) -> None:
    add_free_dedicated_ip(example_repo)
    assert run("swap-ip", "wayne").exit_code == 0
    back = run("swap-ip", "wayne", "--ip", "dedicated-3", today="2027-11-22")
    assert back.exit_code == 2
    assert back.stderr == (
        "relayops customer swap-ip: IP 'dedicated-3' was released by customer 'wayne' on "
        "2026-11-23 (policies/released-ips.yaml:10); it cannot be reused before 2027-11-23; "
        "free dedicated IPs: dedicated-2\n"
    )
    again = run("swap-ip", "wayne", "--ip", "dedicated-3", today="2027-11-23")
    assert again.exit_code == 0, again.stderr
    ledger = (example_repo / "policies/released-ips.yaml").read_text(encoding="utf-8")
    assert ledger.count("  - ip: ") == 3  # vandelay's, wayne's dedicated-3, then dedicated-4


def test_terminating_a_pool_customer_writes_no_ledger_entry(run: Run, example_repo: Path) -> None:
    ledger = (example_repo / "policies/released-ips.yaml").read_bytes()
    result = run("terminate", "acme", "--reason", "moved away")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "wrote customers/acme.yaml\n"
    assert (example_repo / "policies/released-ips.yaml").read_bytes() == ledger
