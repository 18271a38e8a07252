"""Every default the operator promises, in one place: changing one is a visible decision."""

from __future__ import annotations

from libinject.api.types import Mode
from libinject.engine.settings import EngineSettings, LibrarySettings


def test_defaults() -> None:
    settings = EngineSettings()
    assert settings.namespaces.mutate_unlabelled is False
    assert settings.namespaces.operator_namespace == "libinject-system"
    assert {
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "libinject-csi",  # the CSI plugin's pods must start without the plugin
    } <= settings.namespaces.excluded
    assert settings.libraries.registry == "localhost:5000/libinject"
    assert settings.libraries.default_mode is Mode.INIT_CONTAINER
    assert settings.libraries.mount_root == "/opt/libinject"
    assert settings.libraries.image_pull_policy == "IfNotPresent"
    assert settings.libraries.csi_driver == "csi.libinject.dev"
    assert settings.libraries.csi_key == b""  # unsigned until the operator loads its Secret's
    assert settings.init_containers.min_cpu_millis == 50
    assert settings.init_containers.min_memory_bytes == 100 * 2**20


def test_the_csi_key_never_shows_in_a_repr() -> None:
    """Settings get logged and printed: the signing key must not appear in them."""
    settings = EngineSettings(libraries=LibrarySettings(csi_key=b"secret-key-material"))
    assert "secret-key-material" not in repr(settings)
