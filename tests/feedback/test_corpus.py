"""Agreement with sisimai's readings of 196 real bounces and complaint reports.

The figures are computed by bench/feedback/agreement.py (one definition of how they
are counted); RESULTS.md lists and explains every disagreement kept.
"""

from __future__ import annotations

from pathlib import Path

from feedback.corpus import REPO, agreement_module


def test_agreement_with_sisimai_meets_the_targets(corpus: Path) -> None:
    figures = agreement_module().measure(corpus)
    report = "\n".join(figures.disagreements)
    assert figures.files == 196
    assert figures.kind >= 0.97, report
    assert figures.hard >= 0.93, report
    assert figures.status >= 0.90, report


def test_figures_as_recorded_in_results(corpus: Path) -> None:
    """RESULTS.md states these exact counts; a change to them must update it."""
    figures = agreement_module().measure(corpus)
    counted = (
        (figures.kind_agree, figures.files),
        (figures.hard_agree, figures.rows),
        (figures.status_agree, figures.status_rows),
    )
    assert counted == ((196, 196), (196, 205), (166, 168))
    results = (REPO / "bench" / "feedback" / "RESULTS.md").read_text()
    for agree, total in counted:
        assert f"{agree}/{total}" in results
