"""`relayops feedback read`: JSON (golden over the whole corpus), the table, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from relayops.cli import cli
from relayops.feedback import make_trace

GOLDEN = Path(__file__).resolve().parent / "golden" / "corpus.jsonl"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["feedback", "read", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_json_over_the_corpus_matches_the_golden_file(corpus: Path, update_golden: bool) -> None:
    files = sorted(corpus.glob("*.eml"))
    code, out, _ = _run("--json", *map(str, files))
    assert code == 0
    payload = json.loads(out)
    assert list(payload) == ["ok", "reports"] and payload["ok"] is True
    lines = []
    for report in payload["reports"]:
        report["file"] = Path(report["file"]).name  # independent of where the corpus is
        lines.append(json.dumps(report, sort_keys=True, ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    if update_golden:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "run pytest tests/feedback --update-feedback-golden"


def test_the_human_table(corpus: Path) -> None:
    code, out, _ = _run(str(corpus / "lhost-gmx-03.eml"))
    assert code == 0
    assert "mikeneko@example.co.jp" in out and "user-unknown" in out
    assert "sabineko@example.co.jp" in out and "mailbox-full" in out


def test_an_unreadable_file_is_named_and_nothing_is_printed(corpus: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.eml"
    code, out, err = _run("--json", str(corpus / "arf-01.eml"), str(missing))
    assert code == 2
    assert out == ""
    assert err == f"relayops feedback read: cannot read {missing}: No such file or directory\n"


def test_a_directory_is_unreadable_too(tmp_path: Path) -> None:
    code, _, err = _run(str(tmp_path))
    assert code == 2
    assert err == f"relayops feedback read: cannot read {tmp_path}: Is a directory\n"


def test_garbage_is_read_as_other_with_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "x.eml"
    path.write_bytes(b"\x00\xff garbage \r\r\n--")
    code, out, _ = _run("--json", str(path))
    assert code == 0
    (report,) = json.loads(out)["reports"]
    assert (report["kind"], report["recipients"]) == ("other", [])


def test_the_trace_key_file_verifies_stamps(tmp_path: Path) -> None:
    stamp = make_trace(customer="acme", login="acme-app", queue_id="Q1", time=5, key=b"s3cret")
    path = tmp_path / "bounce.eml"
    path.write_bytes(
        b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\n\n"
        b"<gone@example.net>: 550 5.1.1 user unknown\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        + f"X-Relayops-Trace: {stamp}\nSubject: hi\n\nhi\n".encode()
    )
    key = tmp_path / "key"
    key.write_bytes(b"s3cret\n")
    code, out, _ = _run("--json", "--trace-key-file", str(key), str(path))
    origin = json.loads(out)["reports"][0]["origin"]
    assert (code, origin["customer"], origin["login"], origin["trace_verified"]) == (
        0,
        "acme",
        "acme-app",
        True,
    )
    code, out, _ = _run("--json", str(path))
    assert json.loads(out)["reports"][0]["origin"]["trace_verified"] is False
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    code, _, err = _run("--trace-key-file", str(empty), str(path))
    assert (code, err) == (2, f"relayops feedback read: the trace key file {empty} is empty\n")
