"""The CSI Identity service: a node-only plugin (no CONTROLLER_SERVICE capability)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from libinject.csi.generated import csi_pb2, csi_pb2_grpc

DRIVER_NAME = "csi.libinject.dev"


def vendor_version() -> str:
    try:
        return metadata.version("libinject")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class Identity(csi_pb2_grpc.IdentityServicer):  # type: ignore[misc]
    def GetPluginInfo(self, _request: Any, _context: Any) -> Any:  # noqa: N802 (gRPC's names)
        return csi_pb2.GetPluginInfoResponse(name=DRIVER_NAME, vendor_version=vendor_version())

    def GetPluginCapabilities(self, _request: Any, _context: Any) -> Any:  # noqa: N802
        # No CONTROLLER_SERVICE (nor topology): the node service alone, ephemeral volumes.
        return csi_pb2.GetPluginCapabilitiesResponse(capabilities=[])

    def Probe(self, _request: Any, _context: Any) -> Any:  # noqa: N802
        return csi_pb2.ProbeResponse(ready={"value": True})
