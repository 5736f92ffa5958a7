"""The `lab` fixture's refusals, run in an inner pytest session (no lab is touched):
no root is a failure, not a silent skip; a skip only when RELAYOPS_SKIP_LAB=1 says so;
an unmarked test using the lab stops collection."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]

INI = "[pytest]\naddopts = -ra\nmarkers =\n    lab: needs the lab\n"
MARKED = "import pytest\npytestmark = pytest.mark.lab\n\ndef test_uses_lab(lab):\n    pass\n"


@pytest.fixture
def session(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest('pytest_plugins = ["support.lab_fixtures"]\n')
    return pytester


def test_without_root_the_lab_test_fails_and_says_why(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.makepyfile(MARKED)
    monkeypatch.delenv("RELAYOPS_SKIP_LAB", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = session.runpytest_inprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the lab needs root (network namespaces, mounts): run the suite as root, "
            'deselect the lab tests with -m "not lab", or set RELAYOPS_SKIP_LAB=1 to skip them*'
        ]
    )


def test_skip_only_when_the_variable_says_so(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.makepyfile(MARKED)
    monkeypatch.setenv("RELAYOPS_SKIP_LAB", "1")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = session.runpytest_inprocess()
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED *lab tests skipped on purpose (RELAYOPS_SKIP_LAB=1)"])


def test_a_lab_test_without_the_marker_stops_collection(session: pytest.Pytester) -> None:
    session.makepyfile("def test_forgot_the_marker(deployed):\n    pass\n")
    result = session.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*tests using the lab must be marked `lab` (pytestmark = pytest.mark.lab): "
         "test_a_lab_test_without_the_marker_stops_collection.py::test_forgot_the_marker"]
    )  # fmt: skip
