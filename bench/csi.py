"""Making a library available to 50 pods on one node: CSI (one copy per node) versus the
init container's copy (one copy per pod).

`make bench` writes `bench/results/csi.json`. Both sides serve the same library image (the
Python ddtrace bundle for this machine's interpreter, pushed to a local registry):
  init_container  `busybox cp -R /libinject/. <emptyDir>` for each pod, as the injected init
                  container runs it (the image itself is pulled once per node by the runtime
                  in both modes, so it is counted on neither side)
  csi             NodePublishVolume for each pod against the real plugin, with the attributes
                  the webhook writes (signed for the pod's namespace): the first one pulls and
                  unpacks the image into the node cache, the rest bind-mount it
Bytes written are what the writing processes sent to the disk, from the kernel's per-process I/O
accounting (`write_bytes`: file data dirtied on a block device, here ext4): the copy processes'
(each one's, as reaped children's rusage: ru_oublock x 512) and the plugin process's (from
/proc/<pid>/io before and after each publish; its children, crane and mount, write only to pipes
and the mount table; its log goes to tmpfs). File-system metadata (inodes, directories, the
journal) is counted on neither side. `allocated_bytes` is the other view: the disk blocks
(st_blocks) of what each side created and left, each inode once. The user-facing number is
`library_readable`: from the start of the pod's library step (the copy container's start, or the
kubelet's NodePublishVolume) to the first byte of the loader (`sitecustomize.py`) read from the
pod's volume.
Goals, once the cache is warm: at least 100x fewer bytes written per pod with CSI, and a publish
p99 under 50 ms. Over all 50 pods (the fleet), the cache's one copy bounds the ratio by the
number of pods.
"""

from __future__ import annotations

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
from cluster.libraries import DDTRACE, build_bundle, host_target, push_image
from cluster.podrunner.csi import CSIVolumes, NodePlugin, target_path
from cluster.registry import Registry
from libinject.api.types import Flavor, Language
from libinject.engine.delivery import csi_attributes
from libinject.engine.versions import library_image

RESULTS = Path(__file__).parent / "results" / "csi.json"
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
    "file data dirtied on the block device; metadata and journal not counted on either side; "
    "the plugin's own log goes to tmpfs, not counted)",
    "allocated_bytes": "st_blocks x 512 of the files and directories each side created and left, "
    "each inode once",
    "library_readable": "from the start of the pod's library step (copy container started, or "
    "NodePublishVolume sent) to the first byte of the loader read from the pod's volume",
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


def copy_side(library: Path, busybox: Path, scratch: Path) -> dict[str, object]:
    """The init container's copy, once per pod, into a fresh emptyDir each."""
    readable, written = [], []
    pods = scratch / "emptydirs"
    for pod in range(PODS):
        volume = pods / f"pod-{pod}"
        volume.mkdir(parents=True)
        blocks = resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock
        started = time.perf_counter_ns()
        subprocess.run([str(busybox), "cp", "-R", f"{library}/.", f"{volume}/"], check=True)
        first_byte(volume)
        readable.append(time.perf_counter_ns() - started)
        # The copy is the only child reaped meanwhile: the difference is its write_bytes.
        written.append((resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock - blocks) * BLOCK)
    left = allocated(pods)
    shutil.rmtree(pods)
    return {
        "bytes_written": sum(written),
        "bytes_written_per_pod": round(sum(written) / PODS),
        "allocated_bytes": left,
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


def ratio(numerator: Any, denominator: Any) -> float | None:
    """`numerator / denominator`, or None when nothing was written (no ratio to state)."""
    return round(numerator / denominator, 1) if denominator else None


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    crane, busybox = build.binaries()["crane"], debian.busybox()
    with tempfile.TemporaryDirectory(prefix="libinject-bench-") as work, Registry() as registry:
        scratch = Path(work)
        bundle = scratch / "bundle"
        build_bundle(flavor="ddtrace", out=bundle, targets=[host_target()])
        reference = library_image(
            registry=f"{registry.address}/libinject",
            language=Language.PYTHON,
            flavor=Flavor.DDTRACE,
            version=DDTRACE,
        )
        push_image(bundle=bundle, reference=reference, crane=crane, busybox=busybox)
        copy = copy_side(bundle, busybox, scratch)
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
                csi = csi_side(plugin, reference)
    fleet = ratio(copy["bytes_written"], csi["bytes_written"])
    per_warm_pod = ratio(copy["bytes_written_per_pod"], csi["bytes_written_per_warm_pod"])
    p99 = csi["warm_publish"]["p99_us"] / 1000  # type: ignore[index]
    document = {
        "benchmark": f"{PODS} pods on one node: CSI node cache vs init-container copy",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(library=f"python-ddtrace:{DDTRACE} ({host_target()} only)"),
        "measures": MEASURES,
        "wall_seconds": round(time.perf_counter() - clock, 1),
        "pods": PODS,
        "init_container": copy,
        "csi": csi,
        "bytes_written_ratio_fleet": fleet,
        "bytes_written_ratio_per_warm_pod": per_warm_pod,
        "bytes_goal": BYTES_GOAL,
        "bytes_goal_met": per_warm_pod is None or per_warm_pod >= BYTES_GOAL,
        "warm_publish_p99_ms": round(p99, 2),
        "publish_p99_goal_ms": PUBLISH_P99_GOAL_MS,
        "publish_goal_met": p99 < PUBLISH_P99_GOAL_MS,
    }
    write_results(RESULTS, document)
    print(
        f"csi: {fleet}x fewer bytes written for {PODS} pods ({per_warm_pod}x per warm pod), "
        f"warm publish p99 {p99:.2f} ms; written to {RESULTS}"
    )


if __name__ == "__main__":
    main()
