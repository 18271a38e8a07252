"""libinject's CSI node plugin (`libinject csi`) running for the pod runner, as on a node.

The pod runner starts each container in a fresh private mount namespace copied from ours at that
moment, so the plugin runs in OUR mount namespace: a volume it has published is in the copy the
app container gets, and the container binds it at its mountPath. Its mounts are confined to one
directory: on start, `directory` is made a mount point of its own and private (`mount --bind D
D`, `mount --make-private D`), so no mount made under it propagates to any peer namespace (the
host's / is often shared), and on stop everything mounted under it, then it, is unmounted.
Everything of the plugin lives there: the kubelet root (whose pods/ is the plugin's only
allowed target root), the plugin's cache and records, its socket and its log.

Root only (mounts). Like the registry, the plugin dies with the process that started it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster import harness, registry, runtime
from libinject.csi.mounts import mount_points

NODE_ID = "pod-runner-node"


@dataclass
class CSIPlugin(harness.Service):
    """`libinject csi` serving `<directory>/csi.sock`; a context manager, or start and stop.

    `allowed_repositories` are the plugin's --allowed-repository entries (at least one). The
    signing key comes from `key_file`, else from the Secret `key_secret` (NAMESPACE/NAME) read
    with `kubeconfig` (which also turns Events on), as the DaemonSet's plugin reads it.
    `directory` is a temporary one (removed on stop) when not given; `log_file` is where the
    plugin's output goes (default `<directory>/plugin.log`).
    """

    crane: Path
    allowed_repositories: tuple[str, ...]
    key_file: Path | None = None
    key_secret: str = ""
    kubeconfig: Path | None = None
    directory: Path | None = None
    log_file: Path | None = None
    publish_timeout: float = 60.0
    program: tuple[str, ...] = ()  # `libinject csi` of the runtime environment when empty
    process: harness.Process | None = None
    _private: bool = False
    _temporary: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def root(self) -> Path:
        """The confined directory (a private mount point while the plugin runs)."""
        if self.directory is None:
            raise RuntimeError("the CSI plugin has not been started")
        return self.directory

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def cache_root(self) -> Path:
        """The plugin's --root: images/<hex digest>/libinject, volumes/<id>.json."""
        return self.root / "plugin"

    @property
    def socket(self) -> Path:
        return self.root / "csi.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.log_file or self.root / "plugin.log"

    def start(self) -> None:
        if self.directory is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="libinject-csi-")
            self.directory = Path(self._temporary.name)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        _run(["mount", "--bind", str(root), str(root)])
        self._private = True
        _run(["mount", "--make-private", str(root)])
        (self.kubelet_root / "pods").mkdir(parents=True, exist_ok=True)
        command = [
            *(self.program or (str(runtime.libinject()), "csi")),
            f"--endpoint={self.endpoint}",
            f"--root={self.cache_root}",
            f"--node-id={NODE_ID}",
            *(f"--allowed-repository={entry}" for entry in self.allowed_repositories),
            f"--key-file={self.key_file}" if self.key_file else f"--key-secret={self.key_secret}",
            *([f"--kubeconfig={self.kubeconfig}"] if self.kubeconfig else ["--no-events"]),
            f"--target-root={self.kubelet_root / 'pods'}",
            f"--crane={self.crane}",
            f"--publish-timeout={self.publish_timeout}",
        ]
        # Its log outside the confined directory would outlive a stop; inside it is gone with
        # the rest, so the tail goes into a start-up error while it is there.
        self.process = registry.spawn("libinject-csi", command, log=self.log)
        harness.wait_until(self.process, self._ready)

    def stop(self) -> None:
        """Stops the plugin, unmounts what is left under the directory (deepest first) and the
        directory's own mount, then removes a temporary directory. Safe to call twice."""
        if self.process is not None:
            registry.stop(self.process)
        if self.directory is not None and self._private:
            # Deepest first, the directory's own mount last; a point mounted twice shows twice.
            for point in sorted(mounts_under(self.directory, itself=True), key=len, reverse=True):
                _run(["umount", point])
            self._private = False
        if self._temporary is not None and self.directory is not None:
            left = mounts_under(self.directory, itself=True)
            if left:  # never rm -r across a mount: it could reach what is mounted there
                raise RuntimeError(f"still mounted under {self.directory}: {left}")
            self._temporary.cleanup()
            self._temporary = self.directory = None

    def _ready(self) -> bool:
        grpc = importlib.import_module("grpc")
        pb2 = importlib.import_module("libinject.csi.generated.csi_pb2")
        stubs = importlib.import_module("libinject.csi.generated.csi_pb2_grpc")
        if not self.socket.exists():
            return False
        with contextlib.closing(grpc.insecure_channel(self.endpoint)) as channel:
            try:
                response = stubs.IdentityStub(channel).Probe(pb2.ProbeRequest(), timeout=2)
            except grpc.RpcError:
                return False
        return bool(response.ready.value)

    def cached(self) -> list[str]:
        """The digests (hex) the node cache holds: one directory per image."""
        images = self.cache_root / "images"
        if not images.is_dir():
            return []
        return sorted(path.name for path in images.iterdir() if not path.name.startswith("."))

    def library(self, digest: str) -> Path:
        """The cached library directory of `digest`, the source of the plugin's bind mounts."""
        return self.cache_root / "images" / digest.removeprefix("sha256:") / "libinject"

    def records(self) -> list[dict[str, Any]]:
        """The plugin's durable volume records (one per published volume)."""
        volumes = self.cache_root / "volumes"
        if not volumes.is_dir():
            return []
        return [json.loads(path.read_text()) for path in sorted(volumes.glob("*.json"))]

    def pulls(self) -> int:
        return self.log.read_text().count('"library pulled"') if self.log.exists() else 0


def mounts_under(directory: Path, *, itself: bool = False) -> list[str]:
    """Mount points in our mount table strictly under `directory` (and it too, if `itself`)."""
    base = str(directory).rstrip("/")
    return sorted(
        point
        for point in mount_points()
        if point.startswith(base + "/") or (itself and point == base)
    )


def _run(command: list[str]) -> None:
    binary = shutil.which(command[0])
    if binary is None:
        raise RuntimeError(f"the CSI plugin fixture needs {command[0]}(8) on PATH")
    done = subprocess.run([binary, *command[1:]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
