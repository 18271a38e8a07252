"""The operator image: how big it is per platform, and how soon a replica run from it is ready.

`make bench` writes `bench/results/operator-image.json`. The image is built as `make image`
builds it (cluster.operatorimage) and pushed to a local registry; then, per platform:
  compressed_bytes   the layers as the registry stores them (gzip by crane): what a node pulls
  layer_tar_bytes    the layers' uncompressed tars (the digests' content)
  disk_bytes         the image's file system unpacked (`crane export`, flattened), as the disk
                     took it: the blocks of each file, directory and link (st_blocks x 512)
  files              regular files in it
and, on a local control plane with the local overlay installed, for linux/{this machine}:
  first_start        the first replica from the image: pod created by the API server, image
                     pulled and flattened by the pod runner (crane export), unpacked, the process
                     started and serving /readyz (TLS up, caches listed, indexes primed)
  start_to_ready     each later replica from the process's start (the pod runner's launch
                     returned) to /readyz 200: what a container start costs once the node has
                     the image; the pod runner's unpack of the whole root per start (`unpack`,
                     a real runtime mounts its snapshot instead) is reported apart
  host_start_to_ready  the same operator from this host's runtime venv (`libinject run`, the
                     runtime lock alone): the comparison that shows what the image itself adds
Replicas from the image and from the host alternate, one at a time (each stopped before the
next), so both see the same API server and the same Secret (the first generates the
certificates; every later one reads them).
"""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import config

from bench.stats import environment, paired_ratio, summarize, write_results
from bench.webhook import install
from cluster import build, harness, operatorimage
from cluster.imagefiles import crane_json
from cluster.imageoperator import ImageOperator, deployment_template, operator_runner
from cluster.kubectl import Kubectl
from cluster.operator import Operator, OperatorProcess
from cluster.podrunner.images import architecture
from cluster.registry import Registry
from tools.gobuild import checked_output

RESULTS = Path(__file__).parent / "results" / "operator-image.json"
STARTS = 7  # replicas of each kind after the first
MIB = 1 << 20


def platform_sizes(
    image: operatorimage.PlatformImage, *, crane: Path, scratch: Path
) -> dict[str, Any]:
    manifest = crane_json(crane, "manifest", image.reference)
    root = scratch / f"root-{image.platform.name}"
    root.mkdir()
    export = scratch / f"{image.platform.name}.tar"
    checked_output([str(crane), "export", image.reference, str(export)])
    with tarfile.open(export) as flattened:
        flattened.extractall(root, filter="tar")  # owners and modes as in the image
    export.unlink()
    disk, files = _disk_usage(root)
    return {
        "reference": image.reference,
        "layers": len(manifest["layers"]),
        "compressed_bytes": sum(int(layer["size"]) for layer in manifest["layers"]),
        "layer_tar_bytes": image.layer_bytes,
        "disk_bytes": disk,
        "files": files,
    }


def _disk_usage(root: Path) -> tuple[int, int]:
    """Blocks taken by everything under `root` (each inode once), and the regular files."""
    seen: set[int] = set()
    blocks = files = 0
    for directory, names, file_names in os.walk(root):
        for name in [".", *names, *file_names]:
            status = os.lstat(os.path.join(directory, name))
            if status.st_ino in seen:
                continue
            seen.add(status.st_ino)
            blocks += status.st_blocks
            if stat.S_ISREG(status.st_mode):
                files += 1
    return blocks * 512, files


def timed_start(start: Callable[[], Operator]) -> tuple[int, int]:
    """Starts a replica, waits for /readyz and stops it: nanoseconds to launch (`start`
    returning: the process runs), and from launch to ready."""
    begun = time.perf_counter_ns()
    replica = start()
    launched = time.perf_counter_ns()
    replica.wait_ready()
    ready = time.perf_counter_ns()
    replica.stop()
    return launched - begun, ready - launched


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    binaries = build.binaries()
    with (
        tempfile.TemporaryDirectory(prefix="libinject-bench-") as work,
        Registry() as registry,
        harness.ControlPlane(Path(work) / "plane", nodes=1) as plane,
    ):
        scratch = Path(work)
        building = time.perf_counter()
        image = operatorimage.build_image(
            reference=f"{registry.address}/libinject/operator:bench", crane=binaries["crane"]
        )
        build_seconds = time.perf_counter() - building
        sizes = {
            each.platform.oci: platform_sizes(each, crane=binaries["crane"], scratch=scratch)
            for each in image.images
        }
        starts = measure_starts(plane, image=image, binaries=binaries, scratch=scratch)
    report = {
        "benchmark": "The operator image: size per platform, and a replica's start to /readyz",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(
            builder="tests/cluster/operatorimage.py (make image), no Docker engine",
            control_plane="local etcd + kube-apiserver + controllers + kwok (tests/cluster)",
            runner="tests/cluster/podrunner: the Deployment's pod, chrooted into the image",
            clock="time.perf_counter around each step; /readyz polled every 0.1 s",
        ),
        "index": image.reference,
        "build_seconds": round(build_seconds, 1),
        "platforms": sizes,
        "start": starts,
        "wall_seconds": round(time.perf_counter() - clock, 1),
    }
    write_results(RESULTS, report)
    print_summary(report)


def measure_starts(
    plane: harness.ControlPlane,
    *,
    image: operatorimage.OperatorImage,
    binaries: Mapping[str, Path],
    scratch: Path,
) -> dict[str, Any]:
    crane = binaries["crane"]
    kubectl = Kubectl(binary=binaries["kubectl"], kubeconfig=plane.kubeconfig)
    port = harness.free_port()
    install(kubectl, port)
    admin = config.new_client_from_config(config_file=str(plane.kubeconfig))
    template = deployment_template(kubectl)
    runner = operator_runner(plane, admin=admin, crane=crane, template=template,
                             directory=scratch / "pods")  # fmt: skip
    ours = f"linux/{architecture()}"
    (platform_image,) = [each for each in image.images if each.platform.oci == ours]

    def from_image() -> Operator:
        return ImageOperator(admin=admin, runner=runner, template=template,
                             image=platform_image.reference, node=plane.node_names[0],
                             webhook_port=port).start()  # fmt: skip

    def from_host() -> Operator:
        # As bench.webhook runs it: the admin's kubeconfig (RBAC is not what start-up costs).
        return OperatorProcess(kubeconfig=plane.kubeconfig, directory=scratch / "host",
                               webhook_port=port).start()  # fmt: skip

    first_launch, first_ready = timed_start(from_image)
    image_runs, host_runs = [], []
    for _ in range(STARTS):
        image_runs.append(timed_start(from_image))
        host_runs.append(timed_start(from_host))
    image_ready = [ready for _, ready in image_runs]
    host_ready = [ready for _, ready in host_runs]
    return {
        "platform": ours,
        "first_start_seconds": round((first_launch + first_ready) / 1e9, 3),
        "first_pull_unpack_and_launch_seconds": round(first_launch / 1e9, 3),
        "unpack_and_launch": summarize([launch for launch, _ in image_runs]),
        "start_to_ready": summarize(image_ready),
        "host_start_to_ready": summarize(host_ready),
        "start_to_ready_ratio_image_to_host": paired_ratio(image_ready, host_ready),
    }


def print_summary(report: dict[str, Any]) -> None:
    for platform, sizes in report["platforms"].items():
        print(f"{platform}: {sizes['compressed_bytes'] / MIB:.1f} MiB compressed,"
              f" {sizes['disk_bytes'] / MIB:.1f} MiB on disk, {sizes['files']} files")  # fmt: skip
    start = report["start"]
    print(f"first start from the image ({start['platform']}): {start['first_start_seconds']} s;"
          f" start to /readyz p50 {start['start_to_ready']['p50_us'] / 1e6:.2f} s from the"
          f" image, {start['host_start_to_ready']['p50_us'] / 1e6:.2f} s on the host"
          f" (paired ratio {start['start_to_ready_ratio_image_to_host']})")  # fmt: skip


if __name__ == "__main__":
    main()
