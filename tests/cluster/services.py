"""pytest fixtures over the real tools the image and tracing tests use (registered by
tests/conftest.py).

Each is built, downloaded or started once per session, on first use, so a run that selects no
test using them never fetches or starts anything:
  - `crane`: go-containerregistry's crane, built from the Go module proxy (cluster.build);
  - `csi_sanity`: csi-test's CSI conformance suite, built the same way;
  - `busybox`: Debian's static busybox, unpacked from busybox-static (cluster.debian);
  - `registry`: a local OCI registry on loopback (cluster.registry.Registry);
  - `test_agent`: Datadog's trace test agent, also the OTLP receiver (cluster.testagent.TestAgent);
    `agent` is the same agent, cleared of what earlier tests sent it;
  - `csi_plugin`: libinject's CSI node plugin for the pod runner (cluster.csiplugin.CSIPlugin),
    images allowed from the registry's libinject/ only, volumes checked with the key the test
    operator keeps in its Secret; one per test, so its cache starts cold.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import build, debian, harness
from cluster.csiplugin import CSIPlugin
from cluster.fixtures import OPERATOR_NAMESPACE
from cluster.helm import Helm
from cluster.registry import Registry
from cluster.testagent import TestAgent
from libinject.runtime.config import RuntimeSettings


@pytest.fixture(scope="session")
def crane() -> Path:
    return build.ensure(build.crane())["crane"]


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(build.ensure(build.helm())["helm"])


@pytest.fixture(scope="session")
def csi_sanity() -> Path:
    return build.ensure(build.csi_sanity())["csi-sanity"]


@pytest.fixture(scope="session")
def busybox() -> Path:
    return debian.busybox()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def test_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestAgent]:
    with TestAgent(tmp_path_factory.mktemp("test-agent")) as running:
        yield running


@pytest.fixture
def agent(test_agent: TestAgent) -> TestAgent:
    """The session's test agent, holding only what this test sends it."""
    test_agent.clear()
    return test_agent


@pytest.fixture
def csi_plugin(
    crane: Path, registry: Registry, tmp_path: Path, control_plane: harness.ControlPlane
) -> Iterator[CSIPlugin]:
    """The plugin serving `csi_plugin.endpoint`; hand the runner its endpoint and kubelet_root.
    It checks volumes with the key the test's operator keeps in its Secret, read through the
    API as the DaemonSet's plugin reads it."""
    plugin = CSIPlugin(
        crane=crane,
        allowed_repositories=(f"{registry.address}/libinject",),
        key_secret=f"{OPERATOR_NAMESPACE}/{RuntimeSettings().csi_key_secret}",
        kubeconfig=control_plane.kubeconfig,
        directory=tmp_path / "csi",
    )
    with plugin:
        yield plugin
