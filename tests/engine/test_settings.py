"""Every default the operator promises, in one place: changing one is a visible decision."""

from __future__ import annotations

from libinject.api.types import Mode
from libinject.engine.settings import EngineSettings


def test_defaults() -> None:
    settings = EngineSettings()
    assert settings.namespaces.mutate_unlabelled is False
    assert settings.namespaces.operator_namespace == "libinject-system"
    assert {"kube-system", "kube-public", "kube-node-lease"} <= settings.namespaces.excluded
    assert settings.libraries.registry == "localhost:5000/libinject"
    assert settings.libraries.default_mode is Mode.INIT_CONTAINER
    assert settings.libraries.mount_root == "/opt/libinject"
    assert settings.libraries.image_pull_policy == "IfNotPresent"
    assert settings.libraries.csi_driver == "csi.libinject.dev"
    assert settings.init_containers.min_cpu_millis == 50
    assert settings.init_containers.min_memory_bytes == 100 * 2**20
