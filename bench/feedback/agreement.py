"""Agreement of `relayops feedback read` with sisimai's expected readings of the corpus.

    PYTHONPATH=src python bench/feedback/agreement.py [CORPUS_DIR]

Figures (see RESULTS.md for how each is counted):
- kind: per file; sisimai's reason `feedback` → complaint, `vacation` → auto-reply,
  `delivered` → other, files it does not list (`not-*`) → other, anything else → bounce.
- hard/soft: per expected recipient row, paired with our recipients (same status
  first, then in order); a row with no recipient of ours counts as a disagreement.
- status: per expected row whose status is stated in the sample (the code occurs in
  the file's text; sisimai's own pseudo-codes such as 5.0.912 never do).
"""

from __future__ import annotations

import email
import email.policy
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from relayops.feedback.model import Recipient, Report
from relayops.feedback.reader import read_report


def default_corpus(repo: Path) -> Path:
    """The corpus kept in the repository (a copy of the workplace's
    `shared/corpus/feedback`, BSD-2 licence beside it), so a fresh clone tests alone."""
    return repo.resolve() / "tests" / "feedback" / "samples"


@dataclass
class Figures:
    files: int = 0
    kind_agree: int = 0
    rows: int = 0
    hard_agree: int = 0
    status_rows: int = 0
    status_agree: int = 0
    seconds: float = 0.0
    parse_seconds: float = 0.0  # reference: the stdlib parser alone on the same bytes
    disagreements: list[str] = field(default_factory=list)

    def ratio(self, agree: int, total: int) -> float:
        return agree / total if total else 1.0

    @property
    def kind(self) -> float:
        return self.ratio(self.kind_agree, self.files)

    @property
    def hard(self) -> float:
        return self.ratio(self.hard_agree, self.rows)

    @property
    def status(self) -> float:
        return self.ratio(self.status_agree, self.status_rows)


def expected_kind(rows: list[list[str]] | None) -> str:
    if not rows:
        return "other"
    reason = rows[0][2]
    return {"feedback": "complaint", "vacation": "auto-reply", "delivered": "other"}.get(
        reason, "bounce"
    )


def pair(rows: list[list[str]], ours: tuple[Recipient, ...]) -> list[Recipient | None]:
    """Each expected row's recipient of ours: same status first, then in order."""
    free = list(ours)
    paired: list[Recipient | None] = [None] * len(rows)
    for i, row in enumerate(rows):
        match = next((r for r in free if row[0] and r.status == row[0]), None)
        if match is not None:
            paired[i] = match
            free.remove(match)
    for i in range(len(rows)):
        if paired[i] is None and free:
            paired[i] = free.pop(0)
    return paired


def compare(
    name: str, raw: bytes, rows: list[list[str]] | None, report: Report, f: Figures
) -> None:
    f.files += 1
    want = expected_kind(rows)
    if report.kind.value == want:
        f.kind_agree += 1
    else:
        f.disagreements.append(f"{name}: kind {report.kind.value}, sisimai {want}")
    text = raw.decode("latin-1")
    for row, ours in zip(rows or [], pair(rows or [], report.recipients), strict=True):
        status, _code, reason, hard = row[0], row[1], row[2], row[3] == "1"
        f.rows += 1
        got_hard = ours.hard if ours else None
        # A complaint or an auto-reply marks no address dead: such rows agree when we
        # read the same kind, whether or not the report names the address (ARF often
        # redacts the complainant).
        if (reason, report.kind.value) in (("feedback", "complaint"), ("vacation", "auto-reply")):
            got_hard = False
        if got_hard == hard:
            f.hard_agree += 1
        else:
            what = f"{ours.reason.value} {ours.status}" if ours else "no recipient"
            f.disagreements.append(
                f"{name}: hard {got_hard} ({what}), sisimai {hard} ({reason} {status})"
            )
        if status and status in text:
            f.status_rows += 1
            got = ours.status if ours else None
            if got == status:
                f.status_agree += 1
            else:
                f.disagreements.append(f"{name}: status {got}, sisimai {status} ({reason})")


def measure(corpus: Path) -> Figures:
    expected = json.loads((corpus / "expected.json").read_text())
    figures = Figures()
    for path in sorted(corpus.glob("*.eml")):
        raw = path.read_bytes()
        start = time.perf_counter()
        report = read_report(raw)
        figures.seconds += time.perf_counter() - start
        start = time.perf_counter()
        email.message_from_bytes(raw, policy=email.policy.compat32)
        figures.parse_seconds += time.perf_counter() - start
        compare(path.name, raw, expected.get(path.name), report, figures)
    return figures


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    corpus = Path(args[0]) if args else default_corpus(Path(__file__).parents[2])
    figures = measure(corpus)
    print(f"corpus: {corpus} ({figures.files} files)")
    print(f"kind:      {figures.kind_agree}/{figures.files} = {figures.kind:.1%}")
    print(f"hard/soft: {figures.hard_agree}/{figures.rows} = {figures.hard:.1%}")
    print(f"status:    {figures.status_agree}/{figures.status_rows} = {figures.status:.1%}")
    per_file = figures.seconds * 1000 / max(figures.files, 1)
    ratio = figures.seconds / figures.parse_seconds if figures.parse_seconds else 0.0
    print(f"time:      {per_file:.2f} ms per file, {ratio:.1f}x the stdlib parser alone")
    print(f"disagreements ({len(figures.disagreements)}):")
    for line in figures.disagreements:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
