"""The real bounce corpus (`tests/feedback/samples/`) and the
`--update-feedback-golden` switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback.corpus import corpus_dir


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-feedback-golden",
        action="store_true",
        default=False,
        help="rewrite tests/feedback/golden/ from the reader's output",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-feedback-golden"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    assert (path / "expected.json").is_file(), (
        f"the feedback corpus is missing at {path}: it is part of the repository"
    )
    return path
