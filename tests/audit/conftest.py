"""The generated history every audit test reads (built once per module)."""

from __future__ import annotations

import pytest

from audit.history_repo import History, build


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return build(tmp_path_factory.mktemp("audit"))
