"""The daemon's wheel set is keyed by the daemon's own tree: only a daemon change restarts it."""

from __future__ import annotations

import shutil
from pathlib import Path

from relayops.deploy.wheels import daemon_files, daemon_requirements, source_digest

ROOT = Path(__file__).resolve().parents[2]


def checkout(tmp_path: Path) -> Path:
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(ROOT / "requirements", copy / "requirements")
    return copy


def touch(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")


def test_a_lab_or_compiler_edit_keeps_the_daemon_digest(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    before = source_digest(root)
    touch(root / "src/relayops/lab/topology.py")
    touch(root / "src/relayops/compile/postfix.py")
    (root / "src/relayops/lab/new_helper.py").write_text("X = 1\n")
    assert source_digest(root) == before


def test_a_daemon_edit_changes_the_daemon_digest(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    before = source_digest(root)
    touch(root / "src/relayops/policyd/rules.py")
    assert source_digest(root) != before


def test_the_daemon_tree_is_policyd_the_feedback_reader_and_its_own_dependencies() -> None:
    files = daemon_files(ROOT)
    outside = [
        n for n in files if n.startswith("src/") and not n.startswith(("src/relayops/policyd/",))
    ]
    feedback = sorted(p.name for p in (ROOT / "src/relayops/feedback").glob("*.py"))
    backoff = sorted(p.name for p in (ROOT / "src/relayops/backoff").glob("*.py"))
    assert sorted(outside) == sorted(
        ["src/relayops/__init__.py", "src/relayops/relay.py"]
        + ["src/relayops/commands/__init__.py", "src/relayops/commands/options.py"]
        + [f"src/relayops/feedback/{name}" for name in feedback if name != "cli.py"]
        + [f"src/relayops/backoff/{name}" for name in backoff]
    )
    assert "src/relayops/feedback/relay_cli.py" in files
    assert [r.split(">")[0] for r in daemon_requirements(ROOT)] == [
        "click",
        "kilter.protocol",
        "prometheus-client",
        "pydantic",
        "redis",
    ]
    assert 'relayops = "relayops.relay:main"' in files["pyproject.toml"].decode()


def test_a_feedback_reader_edit_changes_the_digest_the_operator_commands_do_not(
    tmp_path: Path,
) -> None:
    root = checkout(tmp_path)
    before = source_digest(root)
    touch(root / "src/relayops/feedback/cli.py")
    assert source_digest(root) == before
    touch(root / "src/relayops/feedback/reader.py")
    assert source_digest(root) != before
