"""The plugin's gRPC server on a unix socket, with its collector of unused versions (and, when
asked, its metrics endpoint and Event poster); stops gracefully on SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import grpc

from libinject.csi import gc
from libinject.csi.cache import DEFAULT_PULL_TIMEOUT, Cache, Puller
from libinject.csi.events import Pod
from libinject.csi.generated import csi_pb2_grpc
from libinject.csi.identity import Identity
from libinject.csi.keys import Keys
from libinject.csi.node import Node, NodeConfig
from libinject.csi.publications import Publication, Publications
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


@dataclass(frozen=True)
class Settings:
    pull_timeout: float = DEFAULT_PULL_TIMEOUT
    gc_grace: float = gc.DEFAULT_GRACE
    gc_interval: float = gc.DEFAULT_INTERVAL
    # What the volume of a library that is not ready holds: the Java launcher jar (the CLI
    # passes it; the plugin does not import the bundle builder).
    not_ready_files: tuple[Path, ...] = ()
    # Called for each volume published empty (after the log and the metric): the Event poster.
    on_empty: Callable[[Publication, Pod | None], None] | None = None
    # Called for each refused publish with the volume id and why: the Event poster.
    on_refused: Callable[[str, str, Pod | None], None] | None = None


@dataclass
class Running:
    server: Any  # grpc.Server
    collector: gc.Collector

    def stop(self, grace: float = GRACE) -> None:
        self.server.stop(grace).wait()
        self.collector.stop()


def build(
    *,
    endpoint: str,
    root: Path,
    config: NodeConfig,
    puller: Puller,
    keys: Keys,
    settings: Settings,
) -> Running:
    """A started server serving Identity and Node at `endpoint`, and its started collector."""
    path = socket_path(endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise EndpointError(f"{path} exists and is not a socket")
        path.unlink()  # a stale socket of an earlier run
    cache = Cache(
        root,
        puller,
        pull_timeout=settings.pull_timeout,
        not_ready_files=settings.not_ready_files,
    )
    publications = Publications(root)
    node = Node(
        config,
        cache,
        publications,
        keys=keys,
        on_empty=settings.on_empty,
        on_refused=settings.on_refused,
    )
    collector = gc.Collector(
        cache, publications, grace=settings.gc_grace, interval=settings.gc_interval
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="csi"))
    csi_pb2_grpc.add_IdentityServicer_to_server(Identity(), server)
    csi_pb2_grpc.add_NodeServicer_to_server(node, server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    collector.start()
    return Running(server, collector)


def serve(
    *,
    endpoint: str,
    root: Path,
    config: NodeConfig,
    puller: Puller,
    keys: Keys,
    settings: Settings,
) -> None:
    """Serves until SIGTERM or SIGINT, then stops, letting calls in flight finish."""
    stopping = threading.Event()

    def stop(signum: int, _: FrameType | None) -> None:
        _log.info("stopping", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = build(
        endpoint=endpoint, root=root, config=config, puller=puller, keys=keys, settings=settings
    )
    _log.info(
        "serving",
        endpoint=endpoint,
        root=str(root),
        node_id=config.node_id,
        key=keys.source,
        repositories=list(config.rules.allowed_repositories),
        gc_grace=settings.gc_grace,
        gc_interval=settings.gc_interval,
    )
    stopping.wait()
    running.stop()
    socket_path(endpoint).unlink(missing_ok=True)
