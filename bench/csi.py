"""Making a library available to 50 pods on one node: CSI (one copy per node) versus the
init container's copy (one copy per pod).

`make bench` writes `bench/results/csi.json`. Both sides serve the same library image (the
Python ddtrace bundle for this machine's interpreter, pushed to a local registry):
  init_container  `busybox cp -R /libinject/. <emptyDir>` for each pod, as the injected init
                  container runs it (the image itself is pulled once per node by the runtime
                  in both modes, so it is counted on neither side)
  csi             NodePublishVolume for each pod against the real plugin: the first one pulls
                  and unpacks the image into the node cache, the rest bind-mount it
Per side: bytes written to the node's disk (what the pods' volumes and the plugin's cache and
records hold, each inode once), in all and per pod once the cache is warm, and the time to make
the library available per pod. Goals, once the cache is warm: at least 100x less data written per
pod with CSI, and a publish p99 under 50 ms. (Over all 50 pods, the cache's one copy bounds the
ratio by the number of pods.)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.stats import environment, summarize, write_results
from cluster import build, debian
from cluster.csiplugin import CSIPlugin
from cluster.libraries import DDTRACE, build_bundle, host_target, push_image
from cluster.podrunner.csi import CSIVolumes, NodePlugin
from cluster.registry import Registry
from libinject.api.types import Flavor, Language
from libinject.bundle.dedup import sizes
from libinject.engine.versions import library_image

RESULTS = Path(__file__).parent / "results" / "csi.json"
PODS = 50
BYTES_GOAL = 100.0
PUBLISH_P99_GOAL_MS = 50.0
DRIVER = "csi.libinject.dev"


def copy_side(library: Path, busybox: Path, scratch: Path) -> dict[str, object]:
    """The init container's copy, once per pod, into a fresh emptyDir each."""
    timings = []
    pods = scratch / "emptydirs"
    for pod in range(PODS):
        volume = pods / f"pod-{pod}"
        volume.mkdir(parents=True)
        started = time.perf_counter_ns()
        subprocess.run([str(busybox), "cp", "-R", f"{library}/.", f"{volume}/"], check=True)
        timings.append(time.perf_counter_ns() - started)
    written = sizes(pods).stored
    shutil.rmtree(pods)
    return {
        "bytes_written": written,
        "bytes_per_pod": round(written / PODS),
        "per_pod": summarize(timings),
    }


def csi_side(plugin: CSIPlugin, reference: str) -> dict[str, object]:
    """NodePublishVolume per pod, sent the way the kubelet sends it (the pod runner's client);
    the first one pulls (cold), the others find the image in the node cache (warm)."""
    volumes = CSIVolumes(NodePlugin(endpoint=plugin.endpoint, kubelet_root=plugin.kubelet_root))
    volume = {
        "name": "libinject-python",
        "csi": {"driver": DRIVER, "readOnly": True, "volumeAttributes": {"image": reference}},
    }
    timings, written = [], []
    for pod in range(PODS):
        metadata = {"uid": f"00000000-0000-0000-0000-{pod:012d}", "name": f"app-{pod}"}
        started = time.perf_counter_ns()
        volumes.publish({"metadata": {**metadata, "namespace": "bench"}}, volume)
        timings.append(time.perf_counter_ns() - started)
        written.append(sizes(plugin.cache_root).stored)  # the cache and the records so far
    volumes.unpublish_all()
    return {
        "bytes_written": written[-1],
        "bytes_first_pod": written[0],  # the node cache's one copy, and the first record
        "bytes_per_warm_pod": round((written[-1] - written[0]) / (PODS - 1)),
        "first_publish_ms": round(timings[0] / 1e6, 1),
        "warm_publish": summarize(timings[1:]),
    }


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
        plugin = CSIPlugin(
            crane=crane,
            allowed_registries=(f"{registry.address}/libinject",),
            directory=scratch / "csi",
        )
        with plugin:
            csi = csi_side(plugin, reference)
    total_ratio = copy["bytes_written"] / csi["bytes_written"]  # type: ignore[operator]
    ratio = copy["bytes_per_pod"] / csi["bytes_per_warm_pod"]  # type: ignore[operator]
    p99 = csi["warm_publish"]["p99_us"] / 1000  # type: ignore[index]
    document = {
        "benchmark": f"{PODS} pods on one node: CSI node cache vs init-container copy",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(library=f"python-ddtrace:{DDTRACE} ({host_target()} only)"),
        "wall_seconds": round(time.perf_counter() - clock, 1),
        "pods": PODS,
        "init_container": copy,
        "csi": csi,
        "bytes_written_ratio_all_pods": round(total_ratio, 1),
        "bytes_written_ratio_per_warm_pod": round(ratio, 1),
        "bytes_goal": BYTES_GOAL,
        "bytes_goal_met": ratio >= BYTES_GOAL,
        "warm_publish_p99_ms": round(p99, 2),
        "publish_p99_goal_ms": PUBLISH_P99_GOAL_MS,
        "publish_goal_met": p99 < PUBLISH_P99_GOAL_MS,
    }
    write_results(RESULTS, document)
    print(
        f"csi: {total_ratio:.1f}x less written for {PODS} pods ({ratio:.0f}x per warm pod), "
        f"warm publish p99 {p99:.2f} ms; written to {RESULTS}"
    )


if __name__ == "__main__":
    main()
