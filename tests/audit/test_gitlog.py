"""gitlog.parse_log on captured `git log -z --raw` output; PR numbers from subjects."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.audit.gitlog import FileChange, open_repo, parse_log, read_blobs
from relayops.audit.history import pr_number, signature_state

A = "a" * 40
B = "b" * 40
Z = "0" * 40
# Two commits as `git log --first-parent --raw -z` prints them in gitlog's layout:
# a squash commit renaming one customer and adding another, then a root commit.
CAPTURED = (
    f"\x1e{'1' * 40}\x00{'2' * 40}\x00Dave Sales\x00dave@x.example\x002026-02-01T12:00:00+00:00"
    f"\x00G\x00dave@x.example\x00SHA256:k\x00Raise acme quota (#13)\x00\x00"
    f"\n:100644 100644 {A} {B} R086\x00customers/a.yaml\x00customers/b b.yaml\x00"
    f":000000 100644 {Z} {A} A\x00customers/\x1ec.yaml\x00"
    f"\x1e{'2' * 40}\x00\x00Alice\x00alice@x.example\x002026-01-05T09:00:00+01:00"
    f"\x00N\x00\x00\x00Initial\x00\x00"
    f"\n:100644 000000 {A} {Z} D\x00customers/old.yaml\x00"
).encode()


def test_parse_captured_log() -> None:
    squash, root = parse_log(CAPTURED)
    assert (squash.sha, squash.parents, squash.author_name, squash.signature) == (
        "1" * 40,
        ("2" * 40,),
        "Dave Sales",
        "G",
    )
    assert (squash.signer, squash.signing_key) == ("dave@x.example", "SHA256:k")
    assert squash.date == datetime(2026, 2, 1, 12, tzinfo=UTC)
    assert squash.files == (
        FileChange("R", "customers/a.yaml", "customers/b b.yaml", A, B),
        FileChange("A", None, "customers/\x1ec.yaml", None, A),
    )
    assert root.parents == ()
    assert root.date == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert root.files == (FileChange("D", "customers/old.yaml", None, A, None),)


def test_parse_empty_output() -> None:
    assert parse_log(b"") == []


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("Merge pull request #12 from bob/initech", 12),
        ("Raise acme quota (#13)", 13),
        ("Raise acme quota (#13)  ", 13),
        ("Fix (#7) typo in (#8)", 8),
        ("Merge pull request #12", 12),
        ("Merge pull request 12 from x/y", None),
        ("Mention #13 somewhere", None),
        ("Raise acme quota (#13) and more", None),
        ("Merge branch 'main' into x", None),
    ],
)
def test_pr_number(subject: str, number: int | None) -> None:
    assert pr_number(subject) == number


@pytest.mark.parametrize(
    ("code", "state"),
    [("G", "good"), ("N", "unsigned"), ("B", "bad"), ("U", "bad"), ("E", "bad"), ("X", "bad")],
)
def test_signature_state_is_good_only_when_verify_commit_accepts(code: str, state: str) -> None:
    assert signature_state(code) == state


@given(st.binary(max_size=400))
def test_parse_log_never_crashes_on_noise(data: bytes) -> None:
    # git never writes this; the property is: no other exception escapes
    with contextlib.suppress(ValueError, IndexError):
        parse_log(data)


def test_read_blobs_in_one_batch(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    contents = [b"one\n", b"", b"two\nlines\n", b"\x00binary\n"]
    oids = []
    for data in contents:
        result = subprocess.run(
            ["git", "-C", str(tmp_path), "hash-object", "-w", "--stdin"],
            input=data,
            capture_output=True,
            check=True,
        )
        oids.append(result.stdout.decode().strip())
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@x",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    repo = open_repo(tmp_path)
    blobs = read_blobs(repo, [*oids, oids[0]])
    assert [blobs[o] for o in oids] == contents
    assert read_blobs(repo, []) == {}


@given(st.text(max_size=40))
def test_any_date_text_is_a_zoned_time_or_exit_two(text: str) -> None:
    from relayops.audit.cli import parse_when

    try:
        when = parse_when(text, "--since", end_of_day=False)
    except SystemExit as exc:
        assert exc.code == 2
    else:
        assert when.tzinfo is not None


def test_bare_dates_cover_the_whole_day() -> None:
    from relayops.audit.cli import parse_when

    assert parse_when("2026-02-01", "--since", end_of_day=False) == datetime(2026, 2, 1, tzinfo=UTC)
    assert parse_when("2026-02-01", "--until", end_of_day=True) == datetime(
        2026, 2, 1, 23, 59, 59, 999999, tzinfo=UTC
    )
    assert parse_when("2026-02-01T10:00", "--at", end_of_day=True) == datetime(
        2026, 2, 1, 10, tzinfo=UTC
    )
