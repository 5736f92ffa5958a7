"""Benchmark `relayops audit --json` on a generated history.

    .venv/bin/python bench/audit/run.py [--customers 10000] [--commits 1000] [--runs 3]

Builds, with one `git fast-import` stream, a repository whose first commit adds
10,000 customers (bench/gen_repo.py's files) and the example policies, then 999
commits each changing three customers (quota override, DKIM selector, status);
every 50th commit is a pull request merged with a merge commit, every 100th
renames a customer and every 150th deletes one. Times the whole command (a fresh
process) next to a reference measured in the same run: `git log -p
--first-parent` over the same repository, writing to /dev/null.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from gen_repo import customer_yaml  # noqa: E402

START = 1_767_225_600  # 2026-01-01T00:00:00Z; commit i lands i hours later


class Stream:
    """A `git fast-import` input stream, written as it is built."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.mark = 0

    def data(self, payload: bytes) -> None:
        self.parts += [f"data {len(payload)}\n".encode(), payload, b"\n"]

    def commit(
        self,
        ref: str,
        when: int,
        who: str,
        message: str,
        files: dict[str, bytes | None],
        *,
        parent: int | None,
        merge: int | None = None,
        renames: tuple[tuple[str, str], ...] = (),
    ) -> int:
        self.mark += 1
        head = f"commit {ref}\nmark :{self.mark}\n"
        person = f"{who} <{who.lower()}@relay.example.net> {when} +0000\n"
        self.parts.append((head + f"author {person}committer {person}").encode())
        self.data(message.encode())
        if parent is not None:
            self.parts.append(f"from :{parent}\n".encode())
        if merge is not None:
            self.parts.append(f"merge :{merge}\n".encode())
        for old, new in renames:
            self.parts.append(f'R "{old}" "{new}"\n'.encode())
        for path, content in files.items():
            if content is None:
                self.parts.append(f"D {path}\n".encode())
            else:
                self.parts.append(f"M 100644 inline {path}\n".encode())
                self.data(content)
        self.parts.append(b"\n")
        return self.mark


def customer(n: int, version: int) -> bytes:
    """Customer n's file after `version` changes: each change touches another field."""
    text = customer_yaml(n)
    if version % 3 == 1:
        text = text.replace("placement:", f"quota_override: {1000 + version}\nplacement:", 1)
    elif version % 3 == 2:
        text = text.replace("selector: s1", f"selector: s{version}", 1)
    elif version:
        text = text.replace(
            "plan:",
            f"status: suspended\nstatus_reason: unpaid {version}\nstatus_date: 2026-02-01\nplan:",
            1,
        )
    return text.encode()


def build(repo: Path, customers: int, commits: int) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    stream = Stream()
    files: dict[str, bytes | None] = {
        f"customers/c{n:05d}.yaml": customer(n, 0) for n in range(customers)
    }
    for part in ("policies", "inventory"):
        for path in sorted((ROOT / part).rglob("*")):
            if path.is_file():
                files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    head = stream.commit("refs/heads/main", START, "Alice", "Initial policy", files, parent=None)
    rng = random.Random(42)
    alive = {n: f"customers/c{n:05d}.yaml" for n in range(customers)}
    versions = dict.fromkeys(range(customers), 0)
    authors = ["Alice", "Bob", "Carol", "Dave", "Eve"]
    for i in range(1, commits):
        when = START + 3600 * i
        chosen = rng.sample(sorted(alive), 3)
        changed: dict[str, bytes | None] = {}
        for n in chosen:
            versions[n] += 1
            changed[alive[n]] = customer(n, versions[n])
        renames: tuple[tuple[str, str], ...] = ()
        if i % 100 == 0:
            n = next(k for k in sorted(alive) if k not in chosen)
            new = f"customers/renamed-{n:05d}.yaml"
            renames = ((alive[n], new),)
            alive[n] = new
        if i % 150 == 0:
            n = next(k for k in sorted(alive, reverse=True) if k not in chosen)
            changed[alive.pop(n)] = None
        who = authors[i % len(authors)]
        if i % 50 == 0:  # a pull request: a branch commit, then a merge commit
            side = stream.commit(
                f"refs/heads/pr-{i}",
                when - 60,
                who,
                f"PR {i}",
                changed,
                parent=head,
                renames=renames,
            )
            head = stream.commit(
                "refs/heads/main",
                when,
                "Carol",
                f"Merge pull request #{i} from x/pr-{i}",
                changed,
                parent=head,
                merge=side,
                renames=renames,
            )
        else:
            head = stream.commit(
                "refs/heads/main",
                when,
                who,
                f"Change {i} (#{i})",
                changed,
                parent=head,
                renames=renames,
            )
    subprocess.run(
        ["git", "-C", str(repo), "fast-import", "--quiet"], input=b"".join(stream.parts), check=True
    )
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "main"], check=True)


def timed(command: list[str], **kwargs: object) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU (user + sys) suffers less from a loaded machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(command, stdout=sink, check=True, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def phases(repo: Path) -> dict[str, float]:
    """Where one in-process run spends its time (after imports)."""
    sys.path.insert(0, str(ROOT / "src"))
    from relayops.audit import gitlog, history, render

    times: dict[str, float] = {}
    start = time.perf_counter()
    git = gitlog.open_repo(repo)
    commits = gitlog.first_parent_log(git)
    times["git log (one pass)"] = time.perf_counter() - start
    start = time.perf_counter()
    blobs = gitlog.read_blobs(git, history.needed_blobs(commits))
    times[f"cat-file --batch ({len(blobs)} blobs)"] = time.perf_counter() - start
    start = time.perf_counter()
    entries = history.build(commits, blobs)
    times["parse YAML + diff"] = time.perf_counter() - start
    start = time.perf_counter()
    json.dumps(render.history_json(entries, {}), indent=2, default=str)
    times["JSON (emit_json's indent=2)"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="relayops-audit-bench-"))
    repo = work / "repo"
    start = time.perf_counter()
    build(repo, args.customers, args.commits)
    built = time.perf_counter() - start
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    audit = [sys.executable, "-m", "relayops", "audit", "--repo", str(repo), "--json"]
    at = [
        sys.executable,
        "-m",
        "relayops",
        "audit",
        "--repo",
        str(repo),
        "--at",
        "2026-01-20",
        "--customer",
        "c00001",
        "--json",
    ]
    reference = ["git", "-C", str(repo), "log", "-p", "--first-parent"]
    ours, refs, ats = [], [], []
    for _ in range(args.runs):
        refs.append(timed(reference))
        ours.append(timed(audit, env=env))
        ats.append(timed(at, env=env))
    out = subprocess.run(audit, env=env, capture_output=True, check=True).stdout
    changes = out.count(b'"change":')
    print(f"repository: {args.customers} customers, {args.commits} commits, built in {built:.1f} s")
    print(f"audit output: {len(out) / 1e6:.1f} MB, {changes} changes")
    print(
        "| measure | reference: `git log -p --first-parent` | `relayops audit --json` | ratio "
        "| `--at DATE --customer ID` |"
    )
    print("|---|---|---|---|---|")
    for label, index in (("wall", 0), ("CPU (user+sys)", 1)):
        r = [x[index] for x in refs]
        o = [x[index] for x in ours]
        a = [x[index] for x in ats]
        mr, mo, ma = statistics.median(r), statistics.median(o), statistics.median(a)
        print(
            f"| {label} | {mr:.2f} s ({', '.join(f'{x:.2f}' for x in r)}) "
            f"| {mo:.2f} s ({', '.join(f'{x:.2f}' for x in o)}) | {mo / mr:.2f} | {ma:.2f} s |"
        )
    for phase, seconds in phases(repo).items():
        print(f"- {phase}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
