"""`relayops warmup status|advance` on a copy of the example repository and captured log lines."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from relayops.cli import cli

NOW = "2026-11-12T15:00:00"  # globex (America/New_York) on day 3: stage 1 of standard-5w
TSS04 = (
    "421 4.7.0 [TSS04] Messages from 198.18.0.21 temporarily deferred due to unexpected "
    "volume or user complaints"
)
BLOCK = (
    "550 5.7.1 Service unavailable, Client host [198.18.0.21] blocked using reputation.lab; "
    "low reputation of the sending IP"
)


def line(n: int, isp: str, status: str, dsn: str, said: str) -> str:
    text = f"host mx.{isp}.lab[198.18.0.30] said: {said} (in reply to RCPT TO command)"
    if status == "sent":
        text = said
    return (
        f"Nov 12 14:{n // 60:02d}:{n % 60:02d} o1 postfix-ip-dedicated-1/isp-{isp}/smtp[900]: "
        f"Q{n:08d}: to=<r{n}@{isp}.com>, relay=mx.{isp}.lab[198.18.0.30]:25, delay=0.1, "
        f"delays=0/0/0/0.1, dsn={dsn}, status={status} ({text})"
    )


def clean_day() -> list[str]:
    return [line(n, "gmail", "sent", "2.0.0", "250 2.0.0 Ok: queued") for n in range(30)] + [
        line(30 + n, "yahoo", "sent", "2.0.0", "250 2.0.0 Ok: queued") for n in range(30)
    ]


def blocked_day() -> list[str]:
    return [line(n, "gmail", "sent", "2.0.0", "250 2.0.0 Ok: queued") for n in range(30)] + [
        line(30 + n, "yahoo", "bounced", "5.7.1", BLOCK) for n in range(30)
    ]


def run(repo: Path, log: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["warmup", *args, "--maillog", str(log), "--repo", str(repo), "--now", NOW]
    )
    return result.exit_code, result.output


def test_status_per_ip_and_class(example_repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(blocked_day()) + "\n")
    code, out = run(example_repo, log, "status", "--json")
    assert code == 0
    report = json.loads(out)
    assert next(iter(report)) == "ok" and report["records_read"] == 60
    one = report["ips"][0]
    assert {k: one[k] for k in ("ip", "customer", "day", "stage", "held", "daily_cap")} == {
        "ip": "dedicated-1",
        "customer": "globex",
        "day": 3,
        "stage": 1,
        "held": False,
        "daily_cap": 200,
    }
    assert one["isp_caps"] == {"gmail": 50, "microsoft": 50, "yahoo": 30}
    assert one["sent_today"] == {"gmail": 30, "yahoo": 0}
    assert one["rates"]["yahoo"]["bounce_rate"] == 1.0
    assert one["can_advance"] is False


def test_advance_holds_after_a_day_of_blocks(example_repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(blocked_day()) + "\n")
    before = (example_repo / "customers" / "globex.yaml").read_text()
    code, out = run(example_repo, log, "advance")
    assert code == 1
    assert out == (
        "dedicated-1 (globex) holds at stage 1:\n"
        "  - yahoo: bounce rate 100.0 % (30 of 30 attempts) is not under the ceiling of 5.0 %\n"
    )
    assert (example_repo / "customers" / "globex.yaml").read_text() == before


def test_advance_proposes_the_next_stage_with_the_figures(
    example_repo: Path, tmp_path: Path
) -> None:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(clean_day()) + "\n")
    message = tmp_path / "msg.txt"
    code, out = run(example_repo, log, "advance", "dedicated-1", "--message-file", str(message))
    assert code == 0, out
    text = (example_repo / "customers" / "globex.yaml").read_text()
    assert "warmup:\n  schedule: standard-5w\n  start: 2026-11-10\n  stage: 2\ndomains:" in text
    assert "# A dedicated IP in its warm-up" in text  # comments kept
    assert message.read_text() == (
        "warmup: dedicated-1 (globex) to stage 2 of standard-5w\n"
        "\n"
        "Day 3 of the warm-up; stage 1 -> 2.\n"
        "Receivers' answers to dedicated-1, 2026-11-10 to 2026-11-12 (relay logs), all under "
        "the ceilings (deferral 10.0 %, bounce 5.0 %, complaint 0.10 %, at least 20 "
        "attempted; 60 were):\n"
        "  gmail: 30 attempted, 30 sent, 0 deferred (0.0 %), 0 bounced (0.0 %), 0 complaints "
        "(0.00 %)\n"
        "  yahoo: 30 attempted, 30 sent, 0 deferred (0.0 %), 0 bounced (0.0 %), 0 complaints "
        "(0.00 %)\n"
        "Caps from stage 2: daily 500; gmail 150, microsoft 150, yahoo 80.\n"
        "\n"
        "Proposed by `relayops warmup advance`.\n"
    )
    assert "+  stage: 2\n" in out
    # Held at stage 2 now: the status says so, and the same clean day moves it to 3.
    code, out = run(example_repo, log, "status", "--json")
    assert json.loads(out)["ips"][0]["held"] is True
    code, out = run(example_repo, log, "advance", "--dry", "--json")
    report = json.loads(out)
    assert (report["ok"], report["written"], report["ips"][0]["to_stage"]) == (True, False, 3)
    assert "stage: 2\n" in (example_repo / "customers" / "globex.yaml").read_text()


def test_an_unknown_ip_and_an_unreadable_log_are_usage_errors(
    example_repo: Path, tmp_path: Path
) -> None:
    code, out = run(example_repo, tmp_path / "nope.log", "advance", "dedicated-9")
    assert code == 2
    assert out.startswith(
        "relayops warmup advance: dedicated-9: no customer warms up a dedicated IP of that name"
    )
    code, out = run(example_repo, tmp_path / "nope.log", "status")
    assert code == 2
    assert "nope.log: cannot read: No such file or directory" in out
