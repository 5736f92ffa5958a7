"""The sink's receiver tables, asked through Postfix's own postmap (no lab needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from relayops.lab import receivers

pytestmark = pytest.mark.skipif(shutil.which("postmap") is None, reason="needs Postfix")


def _query(table: str, text: str, key: str, tmp_path: Path) -> str | None:
    kind, _, _ = table.partition(":")
    path = tmp_path / "table"
    path.write_text(text)
    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\n")  # postmap reads one
    proc = subprocess.run(
        ["postmap", "-c", str(tmp_path), "-q", key, f"{kind}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1) and not proc.stderr, proc.stderr
    return proc.stdout.strip() if proc.returncode == 0 else None


@pytest.mark.parametrize(
    ("key", "answer"),
    [
        ("unknown-1@isp.lab", "550 5.1.1 User unknown"),
        ("full-1@gmail.com", "452 4.2.2 Mailbox full"),
        ("overquota-1@isp.lab", "552 5.2.2 Mailbox over quota"),
        ("anyone@blocked.lab", receivers.REPUTATION_CLASS),
        ("anyone@notblocked.lab", None),
        ("known-unknown-1@isp.lab", None),  # the prefix starts the local part
        ("late-1@isp.lab", None),
    ],
)
def test_recipient_table(key: str, answer: str | None, tmp_path: Path) -> None:
    assert _query("regexp:", receivers.recipient_table(), key, tmp_path) == answer


@pytest.mark.parametrize(
    ("key", "answer"),
    [("slow-throttle-1@outlook.com", receivers.SLOW_CLASS), ("not-slow-1@outlook.com", None),
     ("throttle-1@outlook.com", None)],
)  # fmt: skip
def test_slow_recipients_wait_at_data(key: str, answer: str | None, tmp_path: Path) -> None:
    assert _query("regexp:", receivers.slow_table(), key, tmp_path) == answer


def test_late_recipients_go_to_the_pipe_transport(tmp_path: Path) -> None:
    table = receivers.transport_table()
    assert _query("regexp:", table, "late-1@isp.lab", tmp_path) == "relayops-late-bounce:"
    assert _query("regexp:", table, "on-time@isp.lab", tmp_path) is None


@pytest.mark.parametrize(
    ("domain", "answer"),
    [("gmail.com", "ok"), ("globex.example", "ok"), ("relay.example.net", None),
     ("relay1.relay.example.net", None), ("notrelay.example.net", "ok")],
)  # fmt: skip
def test_every_domain_is_a_mailbox_domain_but_the_services(
    domain: str, answer: str | None, tmp_path: Path
) -> None:
    table = receivers.mailbox_domains_table("relay.example.net")
    assert _query("regexp:", table, domain, tmp_path) == answer


def test_rbl_replies_name_the_client_address() -> None:
    assert receivers.rbl_replies().splitlines()[1:] == [
        "reputation.lab 550 5.7.1 Service unavailable, Client host [$client_address] blocked "
        "using reputation.lab; low reputation of the sending IP",
        "volume.lab 421 4.7.0 [TSS04] Messages from $client_address temporarily deferred due "
        "to unexpected volume or user complaints",
    ]


def test_deferral_table_lists_the_switched_domains() -> None:
    assert receivers.deferral_table(("Yahoo.com", "aol.com")).splitlines()[1:] == [
        f"aol.com {receivers.VOLUME_CLASS}",
        f"yahoo.com {receivers.VOLUME_CLASS}",
    ]
    assert receivers.deferral_table(()).splitlines()[1:] == []
