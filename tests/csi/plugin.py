"""A `libinject csi` plugin for the tests, run for real in a private mount namespace.

Root only. Nothing touches the host's mount table: each plugin's namespace is held by
`unshare --mount --propagation private -- sleep`, and the plugin runs inside it with `nsenter`,
so its mounts live there and outlive a killed plugin (as the kubelet's do), and vanish with the
holder. Files are read through `/proc/<holder>/root/...`, which sees that namespace. The plugin
is called with the generated client stubs, as the kubelet would, with volume attributes signed
as the webhook signs them (`signed`) under the test key in `<directory>/key`.

The stubs are generated at set-up (`make .venv/.installed` runs `python -m
libinject.csi.codegen`); without them every test here fails, naming that command, rather than
being skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

from cluster import poll, runtime
from cluster.registry import Registry
from libinject.csi.mounts import mount_points
from libinject.engine import signature

try:
    from libinject.csi.generated import csi_pb2, csi_pb2_grpc
except ImportError as missing:  # a failure, not a skip: a skipped suite proves nothing
    raise ImportError(
        "the CSI gRPC stubs are missing (libinject/csi/generated/): generate them with "
        "`.venv/bin/python -m libinject.csi.codegen` (or `make .venv/.installed`)"
    ) from missing

UNREACHABLE = "127.0.0.1:9/libinject"  # the discard port: nothing listens, connections refused
KEY = b"5e1f" * 16  # the tests' signing key (64 hex digits, as the operator makes them)
NAMESPACE = "shop"  # the namespace the kubelet names for the tests' pods


def signed(
    image: str, *, namespace: str = NAMESPACE, language: str = "python", key: bytes = KEY
) -> dict[str, str]:
    """The volume context the kubelet sends for a volume the webhook wrote into a pod of
    `namespace`: the webhook's attributes (libinject.engine.delivery) and the pod's namespace."""
    return {
        "image": image,
        "language": language,
        signature.ATTRIBUTE: signature.sign(
            key, namespace=namespace, image=image, language=language
        ),
        "csi.storage.k8s.io/pod.namespace": namespace,
    }


def capability() -> Any:
    mode = csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


@dataclass
class Plugin:
    """One plugin process in a mount namespace held by `holder`; restartable."""

    root: Path
    pods: Path
    registry: Registry
    crane: Path
    holder: subprocess.Popen[bytes]
    publish_timeout: float = 120.0
    extra_args: list[str] = field(default_factory=list)  # more `libinject csi` flags
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    channel: Any = None
    logs: list[Path] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.root / "csi.sock"

    @property
    def key_file(self) -> Path:
        return self.root.parent / "key"

    def start(self) -> None:
        self.starts += 1
        log = self.root.parent / f"plugin-{self.starts}.log"
        self.logs.append(log)
        if not self.key_file.exists():
            self.key_file.write_bytes(KEY + b"\n")
        command = [
            "nsenter",
            f"--target={self.holder.pid}",
            "--mount",
            "--",
            str(runtime.libinject()),
            "csi",
            f"--endpoint=unix://{self.socket}",
            f"--root={self.root}",
            "--node-id=node-1",
            f"--allowed-repository={self.registry.address}/libinject",
            f"--allowed-repository={UNREACHABLE}",
            f"--key-file={self.key_file}",
            f"--target-root={self.pods}",
            f"--crane={self.crane}",
            f"--publish-timeout={self.publish_timeout}",
            *self.extra_args,
        ]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        identity = csi_pb2_grpc.IdentityStub(self.channel)
        poll.until(
            lambda: self._ready(identity),
            what="the CSI plugin to answer Probe",
            timeout=30,
            interval=0.1,
        )

    def _ready(self, identity: Any) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the plugin exited: {self.logs[-1].read_text()}")
        try:
            return bool(identity.Probe(csi_pb2.ProbeRequest(), timeout=1).ready.value)
        except grpc.RpcError:
            return False

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=30)

    @property
    def node(self) -> Any:
        return csi_pb2_grpc.NodeStub(self.channel)

    def log(self) -> str:
        """Every run's log, in order."""
        return "".join(log.read_text() for log in self.logs)

    def publish(self, volume_id: str, target: Path, attributes: dict[str, str]) -> Any:
        request = csi_pb2.NodePublishVolumeRequest(
            volume_id=volume_id,
            target_path=str(target),
            volume_capability=capability(),
            readonly=True,
            volume_context=attributes,
        )
        return self.node.NodePublishVolume(request, timeout=180)

    def unpublish(self, volume_id: str, target: Path) -> Any:
        request = csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(target))
        return self.node.NodeUnpublishVolume(request, timeout=30)

    def inside(self, path: Path) -> Path:
        """`path` as the plugin's mount namespace sees it."""
        return Path(f"/proc/{self.holder.pid}/root") / path.relative_to("/")

    def sh(self, script: str) -> subprocess.CompletedProcess[str]:
        """Runs `script` in the plugin's mount namespace."""
        return subprocess.run(
            ["nsenter", f"--target={self.holder.pid}", "--mount", "--", "sh", "-c", script],
            capture_output=True,
            text=True,
            check=False,
        )

    def mounted(self, target: Path) -> bool:
        return str(target) in mount_points(Path(f"/proc/{self.holder.pid}/mountinfo"))

    def record(self, volume_id: str) -> dict[str, Any] | None:
        path = self.root / "volumes" / f"{volume_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def empty_because(self, volume_id: str) -> str:
        """Why the volume was published empty (its record's reason); fails if it was not."""
        record = self.record(volume_id)
        assert record is not None, f"no record of {volume_id}"
        assert record["digest"] == "empty", f"{volume_id} was published with {record['digest']}"
        return str(record["reason"])

    def pulls(self) -> int:
        return sum(log.read_text().count('"library pulled"') for log in self.logs)

    def cached(self) -> list[str]:
        return sorted(p.name for p in (self.root / "images").iterdir() if p.name[0] != ".")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The plugin's /metrics, as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def target_of(plugin: Plugin, pod: str) -> Path:
    return plugin.pods / pod / "volumes" / "kubernetes.io~csi" / "libinject-python" / "mount"


@contextlib.contextmanager
def running_plugin(
    directory: Path,
    registry: Registry,
    crane: Path,
    *extra_args: str,
    publish_timeout: float = 120.0,
) -> Iterator[Plugin]:
    """A started plugin (root and pods directories under `directory`) in its own mount
    namespace; stopped, and the namespace with every mount in it gone, on exit."""
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--", "sleep", "infinity"]
    )
    pods = directory / "pods"
    pods.mkdir()
    running = Plugin(
        root=directory / "root",
        pods=pods,
        registry=registry,
        crane=crane,
        holder=holder,
        publish_timeout=publish_timeout,
        extra_args=list(extra_args),
    )
    try:
        poll.until(
            lambda: (
                os.readlink(f"/proc/{holder.pid}/ns/mnt")
                != os.readlink(f"/proc/{os.getpid()}/ns/mnt")
            ),
            what="the private mount namespace",
            timeout=10,
            interval=0.02,
        )
        running.start()
        yield running
    finally:
        running.kill(signal.SIGTERM)
        holder.kill()  # the namespace, and every mount in it, goes with its last process
        holder.wait()
