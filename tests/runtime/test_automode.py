"""The operator's view of what `auto` can mean: kept current from node events, read per admission
as one of two ready-made settings."""

from __future__ import annotations

from libinject.engine.settings import EngineSettings
from libinject.runtime.automode import AutoMode

DRIVER = "csi.libinject.dev"
CURRENT = {"kubeletVersion": "v1.36.3", "containerRuntimeVersion": "containerd://2.2.0"}
OLD = {"kubeletVersion": "v1.36.3", "containerRuntimeVersion": "containerd://1.7.27"}


def test_image_volumes_follow_the_nodes() -> None:
    """Usable once the nodes are seen and all can; a node that cannot turns it off, and its
    leaving turns it back on; the CSI driver's settings carry the same verdict."""
    auto = AutoMode(EngineSettings(), server_version="v1.36.3")
    assert not auto.image_volumes.available  # no node seen yet
    auto.node_seen("a", CURRENT)
    auto.node_seen("b", CURRENT)
    assert auto.image_volumes.available
    auto.node_seen("c", OLD)
    assert not auto.image_volumes.available
    assert auto.image_volumes.reason.startswith("node c: container runtime containerd://1.7.27")
    auto.node_gone("c")
    assert auto.image_volumes.available
    with_csi = auto.settings(csi_drivers={DRIVER: True})
    assert with_csi.libraries.csi_registered
    assert with_csi.libraries.image_volumes == auto.image_volumes
    assert not auto.settings(csi_drivers={"other.example": True}).libraries.csi_registered


def test_a_heartbeat_that_changes_nothing_keeps_the_settings() -> None:
    """A node's status update with the same versions rebuilds nothing: the webhook keeps reading
    the very same settings object."""
    auto = AutoMode(EngineSettings(), server_version="v1.36.3")
    auto.node_seen("a", CURRENT)
    before = auto.settings(csi_drivers={})
    auto.node_seen("a", dict(CURRENT))
    auto.node_gone("never-seen")
    assert auto.settings(csi_drivers={}) is before


def test_an_unread_server_version_never_allows_them() -> None:
    auto = AutoMode(EngineSettings(), server_version=None)
    auto.node_seen("a", CURRENT)
    assert not auto.image_volumes.available
    assert auto.image_volumes.reason == "the API server's version is not known yet"
