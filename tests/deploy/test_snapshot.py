"""The deploy's one read of a host (HostSnapshot): its command run by a real shell here,
its output parsed back into what the separate facts gave."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.deploy.facts import (
    SECTION,
    HostSnapshot,
    parse_packages,
    split_sections,
)
from relayops.deploy.removal_steps import ManagedManifest
from relayops.deploy.state import Kind


def _run(command: str) -> list[str]:
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_one_command_reads_basics_paths_services_packages_and_manifest(tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text("x\n")
    (tmp_path / "main.cf").chmod(0o640)
    (tmp_path / "dir").mkdir(mode=0o750)
    (tmp_path / "dir").chmod(0o750)
    (tmp_path / "marker").write_text("digest-1\n")
    (tmp_path / "manifest").write_text("line one\n\nline three\n")
    fact = HostSnapshot()
    command = fact.command(
        marker_path=str(tmp_path / "marker"),
        paths=[str(tmp_path / "main.cf"), str(tmp_path / "dir"), str(tmp_path / "absent")],
        services=["relayops-no-such-service"],
        packages=["redis-server", "relayops-no-such-package"],
        manifest=ManagedManifest().command(str(tmp_path / "manifest")),
    )
    snapshot = fact.process(_run(command))
    assert snapshot.facts.marker == "digest-1"
    assert snapshot.facts.python is not None and snapshot.facts.python.startswith("3.")
    assert "root" in snapshot.facts.accounts
    main_cf = snapshot.states[str(tmp_path / "main.cf")]
    assert (main_cf.kind, main_cf.mode, main_cf.sha1) == (
        Kind.FILE, 0o640, "6fcf9dfbd479ed82697fee719b9f8c610a11ff2a",
    )  # fmt: skip
    assert snapshot.states[str(tmp_path / "dir")].kind == Kind.DIRECTORY
    assert str(tmp_path / "absent") not in snapshot.states
    assert snapshot.running == {"relayops-no-such-service": False}
    assert snapshot.installed == frozenset({"redis-server"})  # this machine has it
    assert ManagedManifest().process(snapshot.manifest) == "line one\n\nline three"


def test_a_host_without_a_manifest_or_marker(tmp_path: Path) -> None:
    fact = HostSnapshot()
    command = fact.command(
        marker_path=str(tmp_path / "marker"),
        paths=[str(tmp_path / "absent")],
        services=[],
        packages=["relayops-no-such-package"],
        manifest=ManagedManifest().command(str(tmp_path / "manifest")),
    )
    snapshot = fact.process(_run(command))
    assert (snapshot.facts.marker, snapshot.states, snapshot.running) == (None, {}, {})
    assert snapshot.installed == frozenset()
    assert ManagedManifest().process(snapshot.manifest) is None


def test_sections_are_counted() -> None:
    assert split_sections(["a", SECTION, SECTION, "b"], 3) == [["a"], [], ["b"]]
    with pytest.raises(ValueError, match="expected 5 sections of host facts, got 2"):
        split_sections(["a", SECTION, "b"], 5)


def test_packages_parse() -> None:
    lines = ["installed postfix", "config-files opendkim", "not-installed nsd", "installed", ""]
    assert parse_packages(lines) == frozenset({"postfix"})


@given(st.lists(st.text(max_size=30), max_size=20))
def test_package_lines_never_crash_and_name_only_installed_lines(lines: list[str]) -> None:
    found = parse_packages(lines)
    assert found <= {line.partition(" ")[2] for line in lines if line.startswith("installed ")}
