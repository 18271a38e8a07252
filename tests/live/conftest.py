"""Everything under tests/live runs against the local control plane (tests/cluster).

Tests that measure something (the share of pods injected through an outage, say) add a line with
the `report` fixture; the lines are printed at the end of the run, pass or fail."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster.fixtures import GROUP, PLURAL, VERSION
from cluster.workloads import PolicyFactory

HERE = Path(__file__).parent
REPORTS: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `pytest -m "not live"` runs the offline tests alone, without building or starting anything.
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.live)


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def add(line: str) -> None:
        REPORTS.append(f"{request.node.name}: {line}")

    return add


@pytest.fixture
def policies(admin: client.ApiClient, installed: None) -> Iterator[PolicyFactory]:
    """Creates cluster-scoped policies with unique names; deletes them afterwards."""
    api = client.CustomObjectsApi(admin)
    made: list[str] = []

    def create(body: dict[str, Any]) -> str:
        body["metadata"]["name"] += f"-{secrets.token_hex(3)}"
        api.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
        made.append(body["metadata"]["name"])
        return str(body["metadata"]["name"])

    yield create
    for name in made:
        api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORTS:
        terminalreporter.section("libinject measurements")
        for line in REPORTS:
            terminalreporter.write_line(line)
