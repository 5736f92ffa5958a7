"""Agreement on samples the reader was never tuned on: the rest of sisimai's public
set-of-emails (those not in tests/feedback/samples), with the expected readings of
rb-sisimai's test suite (test/public/*.rb `IsExpected`).

    PYTHONPATH=src python bench/feedback/holdout.py SET_OF_EMAILS/maildir/bsd \\
        RB_SISIMAI/test/public [CORPUS_DIR]

Neither repository is vendored here; fetch them (github.com/sisimai/set-of-emails,
github.com/sisimai/rb-sisimai) to run it. Counting is agreement.py's.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agreement import Figures, compare, default_corpus

from relayops.feedback.reader import read_report

_ENTRY_RE = re.compile(r"'(\d+)'\s*=>\s*\[(\s*\[.*?\]\s*(?:,\s*\[.*?\]\s*)*)\]", re.DOTALL)
_ROW_RE = re.compile(r"\[([^\[\]]*)\]")


def expected_rows(test_dir: Path) -> dict[str, list[list[str]]]:
    """{'lhost-postfix-02.eml': [[status, code, reason, '1'|'0', feedback-type]], …}."""
    out: dict[str, list[list[str]]] = {}
    for path in sorted(test_dir.glob("*.rb")):
        if path.stem.endswith("-test"):
            continue
        for number, body in _ENTRY_RE.findall(path.read_text()):
            rows = []
            for row in _ROW_RE.findall(body):
                cells = [c.strip().strip("'\"") for c in row.split(",")]
                cells = ["1" if c == "true" else "0" if c == "false" else c for c in cells]
                rows.append(cells[:5])
            if rows:
                out[f"{path.stem}-{number}.eml"] = rows
    return out


def main(argv: list[str]) -> int:
    samples, tests = Path(argv[0]), Path(argv[1])
    corpus = Path(argv[2]) if len(argv) > 2 else default_corpus(Path(__file__).parents[2])
    seen = {p.name for p in corpus.glob("*.eml")}
    expected = expected_rows(tests)
    figures = Figures()
    for name, rows in sorted(expected.items()):
        path = samples / name
        if name in seen or not path.is_file():
            continue
        raw = path.read_bytes()
        start = time.perf_counter()
        report = read_report(raw)
        figures.seconds += time.perf_counter() - start
        compare(name, raw, rows, report, figures)
    print(f"holdout: {figures.files} samples not in {corpus}")
    print(f"kind:      {figures.kind_agree}/{figures.files} = {figures.kind:.1%}")
    print(f"hard/soft: {figures.hard_agree}/{figures.rows} = {figures.hard:.1%}")
    print(f"status:    {figures.status_agree}/{figures.status_rows} = {figures.status:.1%}")
    print(f"disagreements ({len(figures.disagreements)}):")
    for line in figures.disagreements:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
