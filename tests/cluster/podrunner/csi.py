"""The kubelet's CSI part for inline (ephemeral) volumes: NodePublishVolume and
NodeUnpublishVolume over the plugin's unix socket, with what the kubelet sends.

For a pod's `csi` volume the kubelet (pkg/volume/csi) calls the node plugin registered under the
volume's driver name with:
  - volume_id `csi-<sha256 of pod uid + volume name>` (its handle for ephemeral volumes);
  - target_path `<kubelet root>/pods/<uid>/volumes/kubernetes.io~csi/<volume name>/mount`, whose
    parent it makes (0750, with a vol_data.json); the plugin makes the target itself;
  - a mount capability (the volume's fsType) with access mode SINGLE_NODE_WRITER, readonly as
    the volume says;
  - volume_context: the volume's volumeAttributes and, since the CSIDriver asks for the pod's
    information (podInfoOnMount), `csi.storage.k8s.io/pod.name`, `pod.namespace`, `pod.uid`,
    `serviceAccount.name` and `ephemeral: "true"`.
The app container then bind-mounts the target path at its mountPath. When the pod is gone,
NodeUnpublishVolume, and the kubelet removes the volume's directories.

The generated stubs (libinject.csi.generated) and grpc are imported only when a runner is given a
plugin endpoint, so the runner's other uses need neither.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from cluster.podrunner.errors import CSIVolumeError, UnsupportedVolumeError

POD_INFO_PREFIX = "csi.storage.k8s.io/"
PLUGIN_DIRECTORY = "kubernetes.io~csi"  # the kubelet's name for the CSI volume plugin
TIMEOUT = 120.0  # the kubelet's csiTimeout for NodePublishVolume and NodeUnpublishVolume
MODE = 0o750


def volume_handle(pod_uid: str, volume: str) -> str:
    """The kubelet's volume id for an ephemeral inline volume (makeVolumeHandle)."""
    return "csi-" + hashlib.sha256(f"{pod_uid}{volume}".encode()).hexdigest()


def target_path(kubelet_root: Path, pod_uid: str, volume: str) -> Path:
    return kubelet_root / "pods" / pod_uid / "volumes" / PLUGIN_DIRECTORY / volume / "mount"


def pod_info(pod: Mapping[str, Any]) -> dict[str, str]:
    """What a podInfoOnMount driver gets about the pod of an ephemeral volume."""
    metadata, spec = pod["metadata"], pod.get("spec") or {}
    return {
        f"{POD_INFO_PREFIX}pod.name": str(metadata["name"]),
        f"{POD_INFO_PREFIX}pod.namespace": str(metadata["namespace"]),
        f"{POD_INFO_PREFIX}pod.uid": str(metadata["uid"]),
        f"{POD_INFO_PREFIX}serviceAccount.name": str(spec.get("serviceAccountName") or ""),
        f"{POD_INFO_PREFIX}ephemeral": "true",
    }


@dataclass(frozen=True)
class Publication:
    volume_id: str
    target: Path


class NodePlugin:
    """A node plugin as the kubelet knows it once registered: its driver name and socket."""

    def __init__(self, *, endpoint: str, kubelet_root: Path) -> None:
        self.endpoint = endpoint if "://" in endpoint else f"unix://{endpoint}"
        self.kubelet_root = kubelet_root
        self._driver: str | None = None

    @property
    def driver(self) -> str:
        """The plugin's name (GetPluginInfo), asked once: the driver its volumes must name."""
        if self._driver is None:
            pb2, grpc_stubs = _stubs()
            with _channel(self.endpoint) as channel:
                info = grpc_stubs.IdentityStub(channel).GetPluginInfo(
                    pb2.GetPluginInfoRequest(), timeout=TIMEOUT
                )
            self._driver = str(info.name)
        return self._driver

    def check(self, spec: Mapping[str, Any]) -> None:
        """Refuses a csi volume of another driver than the plugin's, or not inline."""
        driver = str((spec.get("csi") or {}).get("driver", ""))
        if driver != self.driver:
            raise UnsupportedVolumeError(
                str(spec["name"]),
                "csi",
                detail=f"driver {driver!r}: the pod runner has only {self.driver!r}",
            )


class CSIVolumes:
    """One pod's published CSI volumes; `unpublish_all` undoes them (safe to call twice)."""

    def __init__(self, plugin: NodePlugin) -> None:
        self.plugin = plugin
        self.published: list[Publication] = []

    def publish(self, pod: Mapping[str, Any], spec: Mapping[str, Any]) -> Path:
        """NodePublishVolume for the pod's inline volume `spec`; the target path."""
        pb2, grpc_stubs = _stubs()
        grpc = importlib.import_module("grpc")
        name, source = str(spec["name"]), spec["csi"]
        uid = str(pod["metadata"]["uid"])
        volume_id = volume_handle(uid, name)
        target = target_path(self.plugin.kubelet_root, uid, name)
        target.parent.mkdir(mode=MODE, parents=True, exist_ok=True)
        _write_volume_data(target.parent, volume_id=volume_id, driver=self.plugin.driver, uid=uid,
                           name=name)  # fmt: skip
        mode = pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
        request = pb2.NodePublishVolumeRequest(
            volume_id=volume_id,
            target_path=str(target),
            volume_capability=pb2.VolumeCapability(
                mount=pb2.VolumeCapability.MountVolume(fs_type=str(source.get("fsType") or "")),
                access_mode=pb2.VolumeCapability.AccessMode(mode=mode),
            ),
            readonly=bool(source.get("readOnly")),
            volume_context={**dict(source.get("volumeAttributes") or {}), **pod_info(pod)},
        )
        # Recorded first: a publish that failed half-way is unpublished too, as the kubelet does.
        self.published.append(Publication(volume_id, target))
        try:
            with _channel(self.plugin.endpoint) as channel:
                grpc_stubs.NodeStub(channel).NodePublishVolume(request, timeout=TIMEOUT)
        except grpc.RpcError as error:
            raise CSIVolumeError(name, "NodePublishVolume", _describe(error)) from None
        return target

    def unpublish_all(self) -> None:
        """NodeUnpublishVolume for each volume, newest first; then the volume's directories go
        (only empty ones: a target still mounted stays, and the first error is raised)."""
        failed: CSIVolumeError | None = None
        while self.published:
            publication = self.published.pop()
            try:
                self._unpublish(publication)
            except CSIVolumeError as error:
                failed = failed or error
                continue
            _remove_empty(publication.target.parents[3], stop=self.plugin.kubelet_root / "pods")
        if failed is not None:
            raise failed

    def _unpublish(self, publication: Publication) -> None:
        pb2, grpc_stubs = _stubs()
        grpc = importlib.import_module("grpc")
        request = pb2.NodeUnpublishVolumeRequest(
            volume_id=publication.volume_id, target_path=str(publication.target)
        )
        try:
            with _channel(self.plugin.endpoint) as channel:
                grpc_stubs.NodeStub(channel).NodeUnpublishVolume(request, timeout=TIMEOUT)
        except grpc.RpcError as error:
            volume = publication.target.parent.name
            raise CSIVolumeError(volume, "NodeUnpublishVolume", _describe(error)) from None
        with contextlib.suppress(FileNotFoundError):
            (publication.target.parent / "vol_data.json").unlink()


def _write_volume_data(directory: Path, *, volume_id: str, driver: str, uid: str,
                       name: str) -> None:  # fmt: skip
    """What the kubelet keeps next to the target to unpublish after its own restart."""
    data = {
        "specVolID": name,
        "volumeHandle": volume_id,
        "driverName": driver,
        "volumeLifecycleMode": "Ephemeral",
        "podUID": uid,
    }
    (directory / "vol_data.json").write_text(json.dumps(data))


def _remove_empty(directory: Path, *, stop: Path) -> None:
    """Removes `directory`'s empty subdirectories, bottom-up, then itself if empty; never a file,
    never a mount point (rmdir fails with EBUSY there), never above `stop`."""
    if stop not in directory.parents:
        return
    for parent, _dirs, _files in os.walk(directory, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(parent)


def _describe(error: Any) -> str:
    return f"{error.code().name}: {error.details()}"


@contextlib.contextmanager
def _channel(endpoint: str) -> Any:
    grpc = importlib.import_module("grpc")
    channel = grpc.insecure_channel(endpoint)
    try:
        yield channel
    finally:
        channel.close()


def _stubs() -> tuple[ModuleType, ModuleType]:
    try:
        return (
            importlib.import_module("libinject.csi.generated.csi_pb2"),
            importlib.import_module("libinject.csi.generated.csi_pb2_grpc"),
        )
    except ImportError as error:
        raise CSIVolumeError(
            "-",
            "import",
            f"the CSI stubs are not generated (python -m libinject.csi.codegen): {error}",
        ) from error
