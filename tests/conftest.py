"""Shared fixtures: the local control plane for tests/live (started only when a test asks).

Markers (pyproject.toml): `live` for tests/live (tests/live/conftest.py marks them), `network`
for every test that may reach a registry. A test is `network` when it uses, however indirectly,
one of NETWORK_FIXTURES, or when its module says so; `pytest -m "not live and not network"` is
the offline subset.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

pytest_plugins = [
    "cluster.fixtures",
    "cluster.services",
    "cluster.libraries",
    "cluster.imageoperator",
]

# Fixtures that build, download or install on first use (their caches may be cold): the Go
# module proxy (the control plane's binaries, crane, csi-sanity, psacheck), Debian (busybox, the
# OCI registry, Debian sid's Java 8), PyPI (the trace test agent, the bundles and the sites the
# loader tests install), Maven Central (the Java agents).
NETWORK_FIXTURES = frozenset(
    {
        "control_plane",
        "crane",
        "helm",
        "csi_sanity",
        "busybox",
        "registry",
        "test_agent",
        "bundles",
        "library_images",
        "ddtrace_site",
        "otel_site",
        "ddtrace_defaults",
        "otel_release_lists",
        "psacheck",
        "agent_jars",
        "java8",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if NETWORK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.network)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Test modules are imported by their file name (no packages under tests/): two modules of
    one name in different directories break the collection of the second, and only in a run
    that collects both (the full one). Refused at the start of every run, naming them."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in sorted(Path(__file__).parent.rglob("test_*.py")):
        by_name[path.name].append(str(path.relative_to(session.config.rootpath)))
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    if shared:
        listing = "; ".join(" and ".join(paths) for paths in shared.values())
        raise pytest.UsageError(f"test modules must have distinct file names: {listing}")
