"""bench/milter/run.py runs end to end on a few messages (a smoke test, not the benchmark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real  # starts Dovecot, the daemon and two Postfix instances

ROOT = Path(__file__).resolve().parents[2]


def test_bench_alternates_and_reports_ratios(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = ["--messages", "12", "--connections", "2", "--rounds", "2", "--warmup", "4"]
    subprocess.run(
        [sys.executable, str(ROOT / "bench/milter/run.py"), *args, "--no-dkim", "--json", str(out)],
        check=True,
        timeout=300,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}"},
    )
    result = json.loads(out.read_text())
    assert [r["order"] for r in result["rounds"]] == [
        ["with_milter", "without_milter"],
        ["without_milter", "with_milter"],
    ]
    assert result["opendkim_in_both"] is False and result["messages_per_round"] == 12
    for r in result["rounds"]:
        assert r["with_milter"] > 0 and r["without_milter"] > 0
        assert r["ratio"] == round(r["with_milter"] / r["without_milter"], 3)
