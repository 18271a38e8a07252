"""The plugin's gRPC server on a unix socket; stops gracefully on SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

import grpc

from libinject.csi.cache import Cache, Puller
from libinject.csi.generated import csi_pb2_grpc
from libinject.csi.identity import Identity
from libinject.csi.node import Node, NodeConfig
from libinject.csi.publications import Publications
from libinject.runtime import logs

WORKERS = 16
GRACE = 5.0

_log = logs.get("libinject.csi.server")


class EndpointError(ValueError):
    """The endpoint is not a usable `unix:///path`."""


def socket_path(endpoint: str) -> Path:
    if not endpoint.startswith("unix:///"):
        raise EndpointError(f"{endpoint!r}: expected unix:///absolute/path")
    return Path(endpoint.removeprefix("unix://"))


def build(
    *, endpoint: str, root: Path, config: NodeConfig, puller: Puller, pull_timeout: float
) -> Any:
    """A started server (grpc.Server) serving Identity and Node at `endpoint`."""
    path = socket_path(endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise EndpointError(f"{path} exists and is not a socket")
        path.unlink()  # a stale socket of an earlier run
    node = Node(config, Cache(root, puller, pull_timeout=pull_timeout), Publications(root))
    server = grpc.server(ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="csi"))
    csi_pb2_grpc.add_IdentityServicer_to_server(Identity(), server)
    csi_pb2_grpc.add_NodeServicer_to_server(node, server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    return server


def serve(
    *, endpoint: str, root: Path, config: NodeConfig, puller: Puller, pull_timeout: float
) -> None:
    """Serves until SIGTERM or SIGINT, then stops, letting calls in flight finish."""
    stopping = threading.Event()

    def stop(signum: int, _: FrameType | None) -> None:
        _log.info("stopping", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = build(
        endpoint=endpoint, root=root, config=config, puller=puller, pull_timeout=pull_timeout
    )
    _log.info("serving", endpoint=endpoint, root=str(root), node_id=config.node_id)
    stopping.wait()
    server.stop(GRACE).wait()
    socket_path(endpoint).unlink(missing_ok=True)
