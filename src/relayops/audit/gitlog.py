"""The audit's only I/O: read the first-parent history and blob contents from Git.

One `git log` pass lists every commit with the files it changed (a merge against
its first parent, so a pull request is one entry) and its signature status
(`%G?`, which runs `git verify-commit`'s own check); one `git cat-file --batch`
process then returns every blob the audit needs. No process per file or commit.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# The folders of the policy repository whose history is audited.
POLICY_PATHS = ("customers", "policies", "inventory")

_HEADER_FIELDS = 9  # %H %P %an %ae %cI %G? %GS %GK %s
_FORMAT = "%x1e%H%x00%P%x00%an%x00%ae%x00%cI%x00%G?%x00%GS%x00%GK%x00%s%x00"
_NULL_OID = "0" * 40


class GitError(Exception):
    """Git refused: not a repository, no commits, bad object; carries git's own words."""


@dataclass(frozen=True)
class FileChange:
    """One file a commit changed, against its first parent (`git log --raw`)."""

    status: str  # A added, M modified, D deleted, R renamed, T type changed
    old_path: str | None
    new_path: str | None
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True)
class CommitRecord:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    date: datetime  # committer date: when the change landed on the branch
    signature: str  # git's %G? letter: G good, B bad, N none, U/X/Y/R/E see git-log(1)
    signer: str  # %GS: the signer's name (GPG) or allowed-signers principal (SSH)
    signing_key: str  # %GK: the key's id or fingerprint
    subject: str
    files: tuple[FileChange, ...]


@dataclass(frozen=True)
class GitRepo:
    """A directory inside a Git work tree and the `-c key=value` settings to run git with."""

    path: Path
    config: tuple[str, ...] = ()

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        command = ["git", "-C", str(self.path)]
        for setting in self.config:
            command += ["-c", setting]
        try:
            result = subprocess.run(
                [*command, *args], input=stdin, capture_output=True, check=False
            )
        except OSError as exc:  # git itself missing
            raise GitError(f"cannot run git: {exc}") from exc
        if result.returncode != 0:
            words = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(words[-1] if words else f"git {args[0]} failed")
        return result.stdout


def open_repo(path: Path, *, config: Sequence[str] = ()) -> GitRepo:
    """The repository at `path`, checked to be inside a Git work tree with a HEAD commit."""
    if not path.is_dir():
        raise GitError(f"{path} is not a directory")
    repo = GitRepo(path, tuple(config))
    try:
        repo.run("rev-parse", "--is-inside-work-tree")
    except GitError as exc:
        raise GitError(f"{path} is not a git repository ({exc})") from exc
    try:
        repo.run("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except GitError as exc:
        raise GitError(f"{path} has no commits yet") from exc
    return GitRepo(path, (*config, *_signers_setting(repo)))


def _signers_setting(repo: GitRepo) -> tuple[str, ...]:
    """Make SSH signatures checkable even with no allowed signers configured.

    Without `gpg.ssh.allowedSignersFile` git cannot check an SSH signature and
    reports the commit as unsigned (%G? = N). An empty file instead makes it say
    "good signature, no trusted signer" (U), which the audit reports as bad.
    """
    try:
        configured = repo.run("config", "--type=path", "--get", "gpg.ssh.allowedSignersFile")
    except GitError:  # not set
        return ("gpg.ssh.allowedSignersFile=/dev/null",)
    signers = Path(configured.decode().strip())
    if not (repo.path / signers).is_file():  # a relative path is read from the repository
        raise GitError(
            f"gpg.ssh.allowedSignersFile {signers} does not exist: SSH signatures cannot be checked"
        )
    return ()


def first_parent_log(
    repo: GitRepo, *, paths: Sequence[str] = (), find_renames: bool = True
) -> list[CommitRecord]:
    """Every first-parent commit of HEAD (that changed `paths`, if given), newest first.

    Paths are relative to `repo.path` (`--relative`), so a policy repository kept
    in a sub-folder of a larger Git repository reads the same. The audit gives no
    `paths` and skips other files itself: a pathspec makes git diff every commit's
    trees twice (once to simplify history), which doubled the time on the benchmark.
    """
    args = [
        "log",
        "--first-parent",
        "--diff-merges=first-parent",
        "--raw",
        "--no-abbrev",
        "--relative",
        "-z",
        f"--format={_FORMAT}",
        "--find-renames" if find_renames else "--no-renames",
        "HEAD",
        *(["--", *paths] if paths else []),
    ]
    return parse_log(repo.run(*args))


def parse_log(output: bytes) -> list[CommitRecord]:
    """Parse `git log -z --raw` output in the `_FORMAT` layout (pure; tested on samples)."""
    tokens = output.decode("utf-8", "surrogateescape").split("\x00")
    commits: list[CommitRecord] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("\x1e"):
            i += 1  # the separators git writes between header and raw lines
            continue
        header = [token[1:], *tokens[i + 1 : i + _HEADER_FIELDS]]
        i += _HEADER_FIELDS
        files: list[FileChange] = []
        while i < len(tokens):
            meta = tokens[i].lstrip("\n")
            if tokens[i].startswith("\x1e"):
                break
            i += 1
            if not meta.startswith(":"):
                continue
            parts = meta[1:].split(" ")
            old_blob, new_blob, status = parts[2], parts[3], parts[4][:1]
            if status in ("R", "C"):
                old_path, new_path = tokens[i], tokens[i + 1]
                i += 2
            else:
                old_path = new_path = tokens[i]
                i += 1
            files.append(
                FileChange(
                    status=status,
                    old_path=None if status == "A" else old_path,
                    new_path=None if status == "D" else new_path,
                    old_blob=None if old_blob == _NULL_OID else old_blob,
                    new_blob=None if new_blob == _NULL_OID else new_blob,
                )
            )
        sha, parents, name, email, when, signature, signer, key, subject = header
        commits.append(
            CommitRecord(
                sha=sha,
                parents=tuple(parents.split()),
                author_name=name,
                author_email=email,
                date=datetime.fromisoformat(when),
                signature=signature or "N",
                signer=signer,
                signing_key=key,
                subject=subject,
                files=tuple(files),
            )
        )
    return commits


def commit_at(repo: GitRepo, when: datetime) -> CommitRecord | None:
    """The first-parent commit of HEAD current at `when` (latest committed at or before it)."""
    # Chosen here rather than with `--before`: git reads a small or negative epoch
    # number there as some other date and answers HEAD.
    limit = when.timestamp()
    listing = repo.run("log", "--first-parent", "--format=%H %ct", "HEAD").decode()
    for line in listing.splitlines():
        sha, _, stamp = line.partition(" ")
        if int(stamp) <= limit:
            output = repo.run("log", "-1", "-z", "--no-walk", f"--format={_FORMAT}", sha)
            return parse_log(output)[0]
    return None


def tree_blobs(
    repo: GitRepo, commit: str, *, paths: Sequence[str] = POLICY_PATHS
) -> dict[str, str]:
    """Path (relative to the repository folder) -> blob id of the files under `paths`."""
    output = repo.run("--literal-pathspecs", "ls-tree", "-r", "-z", commit, "--", *paths)
    blobs: dict[str, str] = {}
    for entry in output.decode("utf-8", "surrogateescape").split("\x00"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        _mode, kind, oid = meta.split(" ")
        if kind == "blob":
            blobs[path] = oid
    return blobs


def read_blobs(repo: GitRepo, oids: Iterable[str]) -> dict[str, bytes]:
    """The contents of every blob in `oids`, from one `git cat-file --batch` process."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    output = repo.run("cat-file", "--batch", stdin="".join(f"{o}\n" for o in wanted).encode())
    contents: dict[str, bytes] = {}
    pos = 0
    for oid in wanted:
        end = output.index(b"\n", pos)
        header = output[pos:end].split(b" ")
        if len(header) != 3:  # "<oid> missing"
            raise GitError(f"blob {oid} is missing from the repository")
        size = int(header[2])
        contents[oid] = output[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1  # the content is followed by a newline
    return contents
