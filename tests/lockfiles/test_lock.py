"""The lock files: current against pyproject.toml, and `make test`'s check fails when stale."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHANGED = "pyproject.toml's dependency lists changed since it was compiled"


def lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock = lock_module()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """What `make lock-check` reads, copied so a test may change pyproject.toml."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "lock.py", tmp_path / "scripts" / "lock.py")
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def lock_check(root: Path) -> subprocess.CompletedProcess[str]:
    """`make lock-check`, the step `make test` runs first, with this interpreter.

    Run as from a shell: under `make test` the inherited MAKELEVEL would make the
    error line read `make[1]: ***`, and MAKEFLAGS would hand over make's jobserver.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(root), "lock-check", f"PY={sys.executable}"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_make_test_runs_the_lock_check_first() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest: deps\n", 1)[1].split("\n\n", 1)[0]
    assert test_recipe.splitlines()[0] == "\t$(MAKE) lock-check"


def test_the_committed_locks_are_current(project: Path) -> None:
    done = lock_check(project)
    assert done.returncode == 0, done.stderr
    assert lock.problems(ROOT) == []


def test_a_new_dependency_makes_the_lock_stale(project: Path) -> None:
    edit(
        project / "pyproject.toml",
        '    "packaging>=23",\n',
        '    "packaging>=23",\n    "tomlkit>=0.13,<0.14",\n',
    )
    done = lock_check(project)
    assert done.returncode != 0
    assert "make: *** [Makefile" in done.stderr
    assert done.stderr.splitlines()[:5] == [
        f"lock: requirements/lock.txt: {CHANGED}",
        "lock: requirements/lock.txt: tomlkit>=0.13,<0.14 (locked: absent)",
        f"lock: requirements/relay.txt: {CHANGED}",
        "lock: requirements/relay.txt: tomlkit>=0.13,<0.14 (locked: absent)",
        "lock: stale; run `make lock` and commit requirements/",
    ]


def test_a_new_dev_dependency_stales_the_lock_only_where_it_is_locked(project: Path) -> None:
    edit(
        project / "pyproject.toml",
        '    "types-PyYAML",\n',
        '    "types-PyYAML",\n    "tox>=4,<5",\n',
    )
    lines = lock_check(project).stderr.splitlines()
    assert "lock: requirements/lock.txt: tox>=4,<5 (locked: absent)" in lines
    assert not any("relay.txt: tox" in line for line in lines)
    # relay.txt's digest covers the whole of pyproject's lists: it is recompiled too.
    assert f"lock: requirements/relay.txt: {CHANGED}" in lines


def test_a_tightened_bound_is_stale(project: Path) -> None:
    edit(project / "pyproject.toml", '"click>=8.1"', '"click>=9"')
    lines = lock_check(project).stderr.splitlines()
    version = lock.pins((ROOT / "requirements/lock.txt").read_text())["click"]
    assert f"lock: requirements/lock.txt: click>=9 (locked: {version})" in lines


def test_other_pyproject_edits_leave_the_lock_current(project: Path) -> None:
    edit(project / "pyproject.toml", 'version = "0.1.0"', 'version = "0.2.0"')
    edit(project / "pyproject.toml", "line-length = 100", "line-length = 99")
    assert lock_check(project).returncode == 0


def test_a_hand_edited_pin_is_caught_even_with_the_right_digest(project: Path) -> None:
    path = project / "requirements/relay.txt"
    version = lock.pins(path.read_text())["click"]
    edit(path, f"click=={version} ", "click==7.0 ")
    lines = lock_check(project).stderr.splitlines()
    assert lines[0] == "lock: requirements/relay.txt: click>=8.1 (locked: 7.0)"


def test_a_missing_lock_is_stale(project: Path) -> None:
    (project / "requirements/relay.txt").unlink()
    assert lock_check(project).stderr.splitlines()[0] == "lock: requirements/relay.txt is missing"


def test_every_line_is_hash_pinned_and_relay_uses_the_lock_versions() -> None:
    full = (ROOT / "requirements/lock.txt").read_text()
    relay = (ROOT / "requirements/relay.txt").read_text()
    for text in (full, relay):
        entries = [e for e in text.replace("\\\n", " ").splitlines() if e and e[0].isalnum()]
        assert entries and all("==" in e and "--hash=sha256:" in e for e in entries)
    full_pins, relay_pins = lock.pins(full), lock.pins(relay)
    assert {name: full_pins[name] for name in relay_pins} == relay_pins
    # runtime only on the relays: no test or lint tool is shipped to them
    assert {"pytest", "mypy", "ruff", "zizmor", "uv", "pyinfra"} & set(relay_pins) == set()


def test_digest_ignores_order_but_not_content() -> None:
    a = '[project]\nname="x"\ndependencies=["a>=1","b"]\n'
    b = '[project]\nname="y"\ndependencies=["b","a>=1"]\n'
    c = '[project]\nname="x"\ndependencies=["a>=2","b"]\n'
    assert lock.digest(a) == lock.digest(b) != lock.digest(c)


def test_install_deps_installs_only_hashed_locked_versions() -> None:
    script = (ROOT / "scripts/install-deps").read_text()
    assert (
        "pip install -q --disable-pip-version-check --require-hashes -r requirements/lock.txt"
        in script
    )
    assert "pip install -q --disable-pip-version-check --no-deps -e ." in script


def test_uv_trusts_the_system_ca_store_unless_told_otherwise() -> None:
    assert lock.uv_environment({"PATH": "/usr/bin"}) == {
        "UV_SYSTEM_CERTS": "1",
        "PATH": "/usr/bin",
    }
    assert lock.uv_environment({"UV_SYSTEM_CERTS": "0"}) == {"UV_SYSTEM_CERTS": "0"}
