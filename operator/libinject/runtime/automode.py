"""What a policy's `auto` mode can mean on this cluster, kept current from Kopf's watches.

Two facts decide it besides the operator's settings: whether our CSI driver is registered (the
serving operator's `csi_drivers` index) and whether every node mounts image volumes (the nodes'
versions, seen here). The webhook picks one of two ready-made `EngineSettings` per admission;
the verdict is rebuilt only when a node's verdict changes, not on every heartbeat.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import replace
from typing import Any

from libinject.engine import imagevolumes
from libinject.engine.detection import Detected
from libinject.engine.digests import Pin
from libinject.engine.settings import EngineSettings, ImageVolumeSupport
from libinject.runtime import logs

log = logs.get(__name__)


class AutoMode:
    """The settings each admission decides with, as far as `auto` is concerned: the operator's
    own, plus what the cluster's versions and CSI drivers say now."""

    def __init__(self, settings: EngineSettings, *, server_version: str | None) -> None:
        self._settings = settings
        self._server_version = server_version
        self._nodes: dict[str, str | None] = {}  # each node's problem, None where it can
        self._apply(imagevolumes.support(server_version=server_version, node_problems={}))

    def settings(self, *, csi_drivers: Container[str]) -> EngineSettings:
        """The settings for an admission, given the names of the registered CSI drivers."""
        registered = self._settings.libraries.csi_driver in csi_drivers
        return self._with_csi if registered else self._without_csi

    @property
    def image_volumes(self) -> ImageVolumeSupport:
        return self._without_csi.libraries.image_volumes

    def use_digests(self, digests: Mapping[str, Pin]) -> None:
        """The digests the operator resolved its policies' images to, from now on."""
        self._use_libraries(digests=digests)

    def use_detection(self, detection: Mapping[str, Detected]) -> None:
        """What the app images fetched so far run, from now on."""
        self._use_libraries(detection=detection)

    def _use_libraries(self, **changes: Any) -> None:
        self._settings = replace(
            self._settings, libraries=replace(self._settings.libraries, **changes)
        )
        self._apply(self.image_volumes)

    def node_seen(self, name: str, node_info: Mapping[str, Any] | None) -> None:
        problem = imagevolumes.node_problem(name, node_info)
        if name in self._nodes and self._nodes[name] == problem:
            return
        self._nodes[name] = problem
        self._update()

    def node_gone(self, name: str) -> None:
        if name in self._nodes:
            del self._nodes[name]
            self._update()

    def _update(self) -> None:
        verdict = imagevolumes.support(
            server_version=self._server_version, node_problems=self._nodes
        )
        if verdict == self.image_volumes:
            return
        if verdict.available != self.image_volumes.available:  # not per node of a long list
            log.info("image volumes for auto", available=verdict.available, reason=verdict.reason)
        self._apply(verdict)

    def _apply(self, verdict: ImageVolumeSupport) -> None:
        libraries = replace(self._settings.libraries, image_volumes=verdict)
        self._without_csi = replace(self._settings, libraries=libraries)
        self._with_csi = replace(self._settings, libraries=replace(libraries, csi_registered=True))
