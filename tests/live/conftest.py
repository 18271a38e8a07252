"""Everything under tests/live runs against the local control plane (tests/cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `pytest -m "not live"` runs the offline tests alone, without building or starting anything.
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.live)
