"""Fixtures for the Node.js loader's tests: the Node runtimes, the test apps, stub bundles and
bundles of the real tracers.

Only fixtures live here (test modules cannot import a conftest reliably: tests/ has several).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.nodejs import RELEASES, SYSTEM_NODE, node_binary
from nodejs.bundles import FLAVORS, BundleFactory, app_dir, build_real_bundle, make_stub_bundle


@pytest.fixture(params=sorted(RELEASES), ids=lambda major: f"node{major}")
def node(request: pytest.FixtureRequest) -> Path:
    """Node 22, 24 and 26 in turn (from the npm registry, cached): the majors the tracers
    support."""
    return node_binary(request.param)


@pytest.fixture(scope="session")
def node20() -> Path:
    """The machine's Node 20, older than both tracers support."""
    return SYSTEM_NODE


@pytest.fixture(scope="session")
def node22() -> Path:
    """Node 22, for the tests where one supported Node is enough."""
    return node_binary(22)


@pytest.fixture(scope="session")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test apps (apps/), with no package of their own."""
    return app_dir(tmp_path_factory.mktemp("apps") / "app")


@pytest.fixture(scope="session")
def real_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A bundle per flavor holding the real tracer (`libinject bundle nodejs`): flavor -> its
    loader's path."""
    root = tmp_path_factory.mktemp("bundles")
    return {flavor: build_real_bundle(flavor, root / flavor) for flavor in FLAVORS}


@pytest.fixture
def stub_bundle(tmp_path: Path) -> BundleFactory:
    """Makes a bundle directory whose tracer is a stub; keyword arguments go to
    make_stub_bundle. Returns the loader's path."""
    made = 0

    def make(**options: object) -> Path:
        nonlocal made
        made += 1
        return make_stub_bundle(tmp_path / f"bundle-{made}", **options)  # type: ignore[arg-type]

    return make
