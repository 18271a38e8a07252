"""The CSI plugin pulling from a registry that needs credentials (HTTP basic auth, as a private
registry asks): with none, or wrong ones, the volume is published empty (the pod starts without
its library) and its record says the registry refused; with the node's credentials (a Docker
config.json, as a kubernetes.io/dockerconfigjson Secret mounted into the DaemonSet gives it) the
library is served; credentials renewed in place count at the next pull, with no restart."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.registry import Registry
from csi.plugin import Plugin, running_plugin, signed, target_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")

CREDENTIALS = ("node-puller", "s3cret-for-tests")


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("private-registry"), credentials=CREDENTIALS) as running:
        yield running


@pytest.fixture(scope="module")
def private_image(
    private_registry: Registry,
    ddtrace_image: str,
    crane: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The ddtrace library image, copied into the private registry (pushed with credentials)."""
    config = private_registry.docker_config(tmp_path_factory.mktemp("pusher"))
    reference = f"{private_registry.address}/{ddtrace_image.split('/', 1)[1]}"
    subprocess.run([str(crane), "copy", ddtrace_image, reference], check=True, capture_output=True,
                   env={**os.environ, "DOCKER_CONFIG": str(config)})  # fmt: skip
    return reference


def plugin_for(
    directory: Path, registry: Registry, private: Registry, crane: Path, *flags: str
) -> contextlib.AbstractContextManager[Plugin]:
    return running_plugin(
        directory, registry, crane, f"--allowed-repository={private.address}/libinject", *flags
    )


def test_without_credentials_the_volume_is_empty_and_says_the_registry_refused(
    tmp_path: Path, registry: Registry, private_registry: Registry, private_image: str, crane: Path
) -> None:
    anonymous = subprocess.run(
        [str(crane), "manifest", private_image], check=False, capture_output=True
    )
    assert anonymous.returncode != 0  # the registry really asks for credentials
    with plugin_for(tmp_path, registry, private_registry, crane) as plugin:
        target = target_of(plugin, "pod-anonymous")
        plugin.publish("csi-anonymous", target, signed(private_image))
        assert not (plugin.inside(target) / "sitecustomize.py").exists()
        assert "UNAUTHORIZED" in plugin.empty_because("csi-anonymous")


def test_the_nodes_credentials_are_used_and_renewed_ones_count_without_a_restart(
    tmp_path: Path, registry: Registry, private_registry: Registry, private_image: str, crane: Path
) -> None:
    config = tmp_path / "registry-credentials"
    private_registry.docker_config(config, password="not-the-password")
    (tmp_path / "plugin").mkdir()
    flags = f"--registry-config={config}"
    with plugin_for(tmp_path / "plugin", registry, private_registry, crane, flags) as plugin:
        first = target_of(plugin, "pod-wrong")
        plugin.publish("csi-wrong", first, signed(private_image))
        assert "UNAUTHORIZED" in plugin.empty_because("csi-wrong")

        private_registry.docker_config(config)  # the Secret renewed: the kubelet rewrites it
        second = target_of(plugin, "pod-right")
        plugin.publish("csi-right", second, signed(private_image))
        assert (plugin.inside(second) / "sitecustomize.py").is_file()
        record = plugin.record("csi-right")
        assert record is not None
        assert record["digest"].startswith("sha256:")
