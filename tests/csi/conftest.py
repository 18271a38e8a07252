"""Fixtures of the CSI plugin's real tests: a running plugin per test (also one serving its
metrics, without Events), and a library image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import harness
from cluster.libraries import ImageFactory
from cluster.registry import Registry
from csi.plugin import Plugin, running_plugin


@pytest.fixture
def plugin(tmp_path: Path, registry: Registry, crane: Path) -> Iterator[Plugin]:
    with running_plugin(tmp_path, registry, crane) as running:
        yield running


@pytest.fixture
def metrics_port() -> int:
    return harness.free_port()


@pytest.fixture
def metered(tmp_path: Path, registry: Registry, crane: Path, metrics_port: int) -> Iterator[Plugin]:
    with running_plugin(
        tmp_path, registry, crane, f"--metrics-port={metrics_port}", "--no-events"
    ) as plugin:
        yield plugin


@pytest.fixture(scope="module")
def ddtrace_image(library_images: ImageFactory) -> str:
    return library_images("ddtrace")
