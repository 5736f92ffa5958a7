"""Check a git ref out into a temporary worktree (for `relayops plan --base REF`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class GitRefError(Exception):
    """The base ref cannot be checked out; the message carries git's own words."""


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise GitRefError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout


def toplevel(path: Path) -> Path:
    return Path(_git(path, "rev-parse", "--show-toplevel").strip())


@contextmanager
def worktree(repo: Path, ref: str) -> Iterator[Path]:
    """Yield the path of `repo` (a directory inside a git work tree) as it was at `ref`."""
    top = toplevel(repo)
    commit = _git(top, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    inside = repo.resolve().relative_to(top.resolve())
    tmp = Path(tempfile.mkdtemp(prefix="relayops-plan-"))
    tree = tmp / "tree"
    _git(top, "worktree", "add", "--detach", "--quiet", str(tree), commit)
    try:
        yield tree / inside
    finally:
        try:
            _git(top, "worktree", "remove", "--force", str(tree))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            _git(top, "worktree", "prune")
