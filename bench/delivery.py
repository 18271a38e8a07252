"""A library delivered to 50 pods on one node, in each delivery mode: what the node writes and
how soon the library is readable in the pod.

`make bench` writes `bench/results/delivery.json`. Every mode serves the same library image: the
Python ddtrace image as released, this machine's platform's image (its 12 interpreter targets,
what a node pulls from the index `bench.bundle_size` sizes), pushed to a local registry.
  init_container  `busybox cp -R /libinject/. <emptyDir>` for each pod, as the injected init
                  container runs it. The runtime also pulls the image once per node for the
                  init container: that pull is the image-volume arm's `node_pull`, measured once
                  and added to this arm's first pod (`first_pod_bytes_written_with_pull`).
  csi             NodePublishVolume for each pod against the real plugin, with the attributes
                  the webhook writes (signed for the pod's namespace): the first one pulls and
                  unpacks the image into the node cache, the rest bind-mount it. The runtime
                  pulls nothing: no container runs the library image.
  image_volume    what the container runtime does for an image volume, modeled on containerd's
                  overlayfs snapshotter (there is no container runtime here): the first pod's
                  pull writes the compressed layers into a content store (`crane pull`, OCI
                  layout) and unpacks each layer into a snapshot (`tar -x`); every pod then gets
                  a read-only view of the snapshot's library directory (the mode's subPath),
                  here a read-only bind mount.
Bytes written are what the writing processes sent to the disk, from the kernel's per-process I/O
accounting (`write_bytes`: file data dirtied on a block device, here ext4): the copy, pull,
unpack and mount processes' (each one's, as reaped children's rusage: ru_oublock x 512) and the
plugin process's (from /proc/<pid>/io before and after each publish; its children, crane and
mount, write only to pipes and the mount table; its log goes to tmpfs). File-system metadata
(inodes, directories, the journal) is counted on no side. `allocated_bytes` is the other view:
the disk blocks (st_blocks) of what each side created and left on the node for its pods (each
inode once; the copy arm's emptyDirs are measured one pod at a time, then removed, so 50 copies
of the image never sit on the disk at once). The user-facing number is `library_readable`: from
the start of the pod's library step (the copy container's start, NodePublishVolume, or the pull
for the first image-volume pod and the view's mount for the others) to the first byte of the
loader (`sitecustomize.py`) read from the pod's volume.
Goals for CSI, once the cache is warm: at least 100x fewer bytes written per pod than the copy,
and a publish p99 under 50 ms.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import environment, summarize, write_results
from cluster import build, debian
from cluster.csiplugin import CSIPlugin
from cluster.libraries import DDTRACE, build_bundle, push_image
from cluster.podrunner.csi import CSIVolumes, NodePlugin, target_path
from cluster.registry import Registry
from libinject.api.types import Flavor, Language
from libinject.engine.delivery import IMAGE_LIBRARY_DIR, csi_attributes
from libinject.engine.platforms import node_platform
from libinject.engine.versions import library_image

RESULTS = Path(__file__).parent / "results" / "delivery.json"
PODS = 50
BYTES_GOAL = 100.0
PUBLISH_P99_GOAL_MS = 50.0
DRIVER = "csi.libinject.dev"
VOLUME = "libinject-python"
NAMESPACE = "bench"
KEY = b"be9c" * 16  # the bench's signing key: the plugin reads it from a file
LOADER = "sitecustomize.py"  # the first file the app's interpreter reads from the volume
BLOCK = 512  # st_blocks and ru_oublock count 512-byte units
# The plugin's log goes to memory (tmpfs): its lines are the harness's, which a node's container
# runtime would write either way; on disk they would count as the plugin's writes.
MEMORY = "/dev/shm"

MEASURES = {
    "bytes_written": "write_bytes of the writing processes (kernel per-process I/O accounting: "
    "file data dirtied on the block device; metadata and journal not counted on any side; "
    "the plugin's own log goes to tmpfs, not counted)",
    "allocated_bytes": "st_blocks x 512 of the files and directories each side left on the node "
    "for its pods, each inode once (the copy: one pod's emptyDir times the pods)",
    "library_readable": "from the start of the pod's library step (copy container started, "
    "NodePublishVolume sent, the pull for the first image-volume pod, the view's mount for the "
    "others) to the first byte of the loader read from the pod's volume",
}


def allocated(root: Path) -> int:
    """Disk blocks under `root` (files and directories), each inode once, in bytes."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _, names in os.walk(root):
        for path in (directory, *(os.path.join(directory, name) for name in names)):
            stat = os.lstat(path)
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * BLOCK
    return total


def first_byte(volume: Path) -> None:
    with (volume / LOADER).open("rb") as loader:
        if not loader.read(1):
            raise RuntimeError(f"{volume / LOADER} is empty: the library is not there")


def children_written() -> int:
    """Bytes written so far by the reaped children (ru_oublock counts 512-byte blocks)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock * BLOCK


def copy_side(library: Path, busybox: Path, scratch: Path) -> dict[str, object]:
    """The init container's copy, once per pod, into a fresh emptyDir each (measured, then
    removed: every pod's copy is the same bytes)."""
    readable, written, left = [], [], []
    for pod in range(PODS):
        volume = scratch / "emptydirs" / f"pod-{pod}"
        volume.mkdir(parents=True)
        before = children_written()
        started = time.perf_counter_ns()
        subprocess.run([str(busybox), "cp", "-R", f"{library}/.", f"{volume}/"], check=True)
        first_byte(volume)
        readable.append(time.perf_counter_ns() - started)
        written.append(children_written() - before)  # the copy is the only child reaped
        left.append(allocated(volume))
        shutil.rmtree(volume)
    return {
        "bytes_written": sum(written),
        "bytes_written_per_pod": round(sum(written) / PODS),
        "allocated_bytes": sum(left),
        "library_readable": summarize(readable),
    }


def plugin_write_bytes(plugin: CSIPlugin) -> int:
    assert plugin.process is not None
    io = Path(f"/proc/{plugin.process.popen.pid}/io").read_text()
    return int(next(line.split()[1] for line in io.splitlines() if line.startswith("write_bytes")))


def csi_side(plugin: CSIPlugin, reference: str) -> dict[str, object]:
    """NodePublishVolume per pod, sent the way the kubelet sends it (the pod runner's client);
    the first one pulls (cold), the others find the image in the node cache (warm)."""
    volumes = CSIVolumes(NodePlugin(endpoint=plugin.endpoint, kubelet_root=plugin.kubelet_root))
    attributes = csi_attributes(
        image=reference, language=Language.PYTHON, namespace=NAMESPACE, key=KEY
    )
    volume = {
        "name": VOLUME,
        "csi": {"driver": DRIVER, "readOnly": True, "volumeAttributes": attributes},
    }
    publish, readable, written = [], [], []
    before = plugin_write_bytes(plugin)
    for pod in range(PODS):
        uid = f"00000000-0000-0000-0000-{pod:012d}"
        metadata = {"uid": uid, "name": f"app-{pod}", "namespace": NAMESPACE}
        started = time.perf_counter_ns()
        volumes.publish({"metadata": metadata}, volume)
        published = time.perf_counter_ns()
        first_byte(target_path(plugin.kubelet_root, uid, VOLUME))
        readable.append(time.perf_counter_ns() - started)
        publish.append(published - started)
        written.append(plugin_write_bytes(plugin) - before)
    left = allocated(plugin.cache_root)
    volumes.unpublish_all()
    warm = written[-1] - written[0]
    return {
        "bytes_written": written[-1],
        "bytes_written_first_pod": written[0],  # the pull into the node cache, and a record
        "bytes_written_per_warm_pod": round(warm / (PODS - 1)),
        "allocated_bytes": left,
        "first_publish_ms": round(publish[0] / 1e6, 1),
        "warm_publish": summarize(publish[1:]),
        "library_readable_first_pod_ms": round(readable[0] / 1e6, 1),
        "library_readable_warm": summarize(readable[1:]),
    }


def run_child(command: list[str]) -> int:
    """Runs one process to completion; the bytes it wrote."""
    before = children_written()
    subprocess.run(command, check=True, capture_output=True)
    return children_written() - before


def pull_and_unpack(*, crane: Path, reference: str, node: Path) -> tuple[int, int]:
    """The runtime's pull of the image: its compressed layers into the content store, each then
    unpacked in order into one snapshot. Bytes written by the pull and by the unpacking."""
    store, snapshot = node / "content", node / "snapshot"
    platform = f"--platform={node_platform()}"
    pulled = run_child([str(crane), "pull", "--format=oci", platform, reference, str(store)])
    snapshot.mkdir()
    unpacked = 0
    for layer in layers(store):
        unpacked += run_child(["tar", "-x", "-f", str(layer), "-C", str(snapshot), "-p"])
    return pulled, unpacked


def layers(store: Path) -> list[Path]:
    """The layer blobs of the one image in an OCI layout, bottom first."""

    def blob(digest: str) -> Path:
        algorithm, _, hex_digest = digest.partition(":")
        return store / "blobs" / algorithm / hex_digest

    (entry,) = json.loads((store / "index.json").read_text())["manifests"]
    manifest = json.loads(blob(entry["digest"]).read_text())
    return [blob(layer["digest"]) for layer in manifest["layers"]]


def image_volume_side(*, crane: Path, reference: str, scratch: Path) -> dict[str, object]:
    """The first pod pulls and unpacks, every pod gets a read-only view of the snapshot's
    library directory."""
    node = scratch / "runtime"
    node.mkdir()
    library = node / "snapshot" / IMAGE_LIBRARY_DIR.lstrip("/")
    readable, written, views = [], [], []
    pull: tuple[int, int] = (0, 0)
    pull_ns = 0
    try:
        for pod in range(PODS):
            view = node / "pods" / f"pod-{pod}"
            view.mkdir(parents=True)
            started = time.perf_counter_ns()
            if pod == 0:
                pull = pull_and_unpack(crane=crane, reference=reference, node=node)
                pull_ns = time.perf_counter_ns() - started
            mounted = run_child(["mount", "--bind", "-o", "ro", str(library), str(view)])
            views.append(view)
            first_byte(view)
            readable.append(time.perf_counter_ns() - started)
            written.append(mounted)
    finally:
        for view in views:
            subprocess.run(["umount", str(view)], check=True)
    return {
        "bytes_written": sum(pull) + sum(written),
        "node_pull": {
            "bytes_written": sum(pull),
            "content_store_bytes_written": pull[0],
            "snapshot_bytes_written": pull[1],
            "ms": round(pull_ns / 1e6, 1),
        },
        "bytes_written_per_warm_pod": round(sum(written[1:]) / (PODS - 1)),
        "allocated_bytes": allocated(node),
        "library_readable_first_pod_ms": round(readable[0] / 1e6, 1),
        "library_readable_warm": summarize(readable[1:]),
    }


def ratio(numerator: Any, denominator: Any) -> float | None:
    """`numerator / denominator`, or None when nothing was written (no ratio to state)."""
    return round(numerator / denominator, 1) if denominator else None


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    crane, busybox = build.binaries()["crane"], debian.busybox(node_platform())
    with tempfile.TemporaryDirectory(prefix="libinject-bench-") as work, Registry() as registry:
        scratch = Path(work)
        bundle = scratch / "bundle"
        report = build_bundle(flavor="ddtrace", out=bundle, platform=node_platform())
        reference = library_image(
            registry=f"{registry.address}/libinject",
            language=Language.PYTHON,
            flavor=Flavor.DDTRACE,
            version=DDTRACE,
        )
        push_image(bundles={node_platform(): bundle}, reference=reference, crane=crane)
        images = image_volume_side(crane=crane, reference=reference, scratch=scratch)
        copy = copy_side(bundle, busybox, scratch)
        csi = plugin_side(crane=crane, registry=registry, reference=reference, scratch=scratch)
    document = results(copy=copy, csi=csi, images=images, targets=report["targets"])
    document["timestamp"] = started.isoformat(timespec="seconds")
    document["wall_seconds"] = round(time.perf_counter() - clock, 1)
    write_results(RESULTS, document)
    print(
        f"delivery: per warm pod {copy['bytes_written_per_pod']} bytes written by the copy, "
        f"{csi['bytes_written_per_warm_pod']} by csi, {images['bytes_written_per_warm_pod']} by "
        f"image volumes; written to {RESULTS}"
    )


def plugin_side(
    *, crane: Path, registry: Registry, reference: str, scratch: Path
) -> dict[str, object]:
    key = scratch / "key"
    key.write_bytes(KEY)
    with tempfile.NamedTemporaryFile(dir=MEMORY, prefix="libinject-csi-", suffix=".log") as log:
        plugin = CSIPlugin(
            crane=crane,
            allowed_repositories=(f"{registry.address}/libinject",),
            key_file=key,
            directory=scratch / "csi",
            log_file=Path(log.name),
        )
        with plugin:
            return csi_side(plugin, reference)


def results(
    *,
    copy: dict[str, Any],
    csi: dict[str, Any],
    images: dict[str, Any],
    targets: list[str],
) -> dict[str, Any]:
    pull = images["node_pull"]["bytes_written"]
    per_warm_pod = ratio(copy["bytes_written_per_pod"], csi["bytes_written_per_warm_pod"])
    p99 = csi["warm_publish"]["p99_us"] / 1000
    return {
        "benchmark": f"{PODS} pods on one node: init-container copy, CSI node cache, image volume",
        "environment": environment(
            library=f"python-ddtrace:{DDTRACE} (all {len(targets)} targets)"
        ),
        "measures": MEASURES,
        "pods": PODS,
        "init_container": copy
        | {"first_pod_bytes_written_with_pull": copy["bytes_written_per_pod"] + pull},
        "csi": csi,
        "image_volume": images,
        # Each mode's bytes for the whole node: the copy arm pays the runtime's pull too.
        "bytes_written_fleet": {
            "init_container": copy["bytes_written"] + pull,
            "csi": csi["bytes_written"],
            "image_volume": images["bytes_written"],
        },
        "bytes_written_ratio_per_warm_pod_copy_to_csi": per_warm_pod,
        "bytes_goal": BYTES_GOAL,
        "bytes_goal_met": per_warm_pod is None or per_warm_pod >= BYTES_GOAL,
        "warm_publish_p99_ms": round(p99, 2),
        "publish_p99_goal_ms": PUBLISH_P99_GOAL_MS,
        "publish_goal_met": p99 < PUBLISH_P99_GOAL_MS,
    }


if __name__ == "__main__":
    main()
