"""How big each library image is, and what storing identical files once saves.

`make bench` writes `bench/results/bundle-size.json`.

Python, per flavor: the full bundle (every interpreter 3.9-3.14, manylinux and musllinux,
x86_64 and aarch64) built by `libinject bundle python`:
  plain_install_bytes   the sum of the plain `pip install --target` of every target
  apparent_bytes        the bundle without deduplication (each path counted)
  stored_bytes          the bundle as stored: identical files kept once (hard links), which is
                        what the image layer holds
The pip stages are cached, so only the first run on a machine downloads wheels.

Java, per flavor: the bundle built by `libinject bundle java`, pushed as its image by
`libinject image` to a local registry:
  agent_jar_bytes       the agent jar as Maven Central serves it (its committed lock's size)
  stored_bytes          the bundle on disk: the agent, the launcher and bundle.txt
  layer_bytes           the image's one layer as the registry stores it (compressed by crane,
                        with the copy step's busybox), read from the pushed manifest
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.stats import environment, write_results
from cluster import build, debian
from cluster.libraries import JAVA_VERSIONS, VERSIONS, build_bundle, build_java_bundle, push_image
from cluster.registry import Registry
from libinject.api.types import Flavor, Language
from libinject.bundle.dedup import sizes as disk_sizes
from libinject.engine.versions import library_image

RESULTS = Path(__file__).parent / "results" / "bundle-size.json"
MIB = 1 << 20


def measure(flavor: str, out: Path) -> dict[str, object]:
    report = build_bundle(flavor=flavor, out=out)
    sizes = {key: report[key] for key in ("plain_install_bytes", "apparent_bytes", "stored_bytes")}
    return {
        "version": VERSIONS[flavor],
        "targets": len(report["targets"]),
        "files": report["files"],
        **sizes,
        **in_mib(sizes),
        "stored_over_plain": round(sizes["stored_bytes"] / sizes["plain_install_bytes"], 3),
        "bytecode_for": report["bytecode"],
        "excluded": report["excluded"],
    }


def measure_java(flavor: str, out: Path, registry: Registry) -> dict[str, object]:
    report = build_java_bundle(flavor=flavor, out=out)
    reference = library_image(
        registry=f"{registry.address}/libinject",
        language=Language.JAVA,
        flavor=Flavor(flavor),
        version=JAVA_VERSIONS[flavor],
    )
    crane = build.binaries()["crane"]
    push_image(bundle=out, reference=reference, crane=crane, busybox=debian.busybox())
    sizes = {
        "agent_jar_bytes": (out / report["agent"]).stat().st_size,
        "stored_bytes": disk_sizes(out).stored,
        "layer_bytes": pushed_layer_bytes(crane, reference),
    }
    return {"version": JAVA_VERSIONS[flavor], **sizes, **in_mib(sizes)}


def pushed_layer_bytes(crane: Path, reference: str) -> int:
    """The compressed size of the image's layers, as its manifest in the registry gives it."""
    manifest = subprocess.run(
        [str(crane), "manifest", reference],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(int(layer["size"]) for layer in json.loads(manifest)["layers"])


def in_mib(sizes: dict[str, int]) -> dict[str, float]:
    return {key.replace("_bytes", "_mib"): round(value / MIB, 2) for key, value in sizes.items()}


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="libinject-bench-") as scratch, Registry() as registry:
        python = {flavor: measure(flavor, Path(scratch) / flavor) for flavor in VERSIONS}
        java = {
            flavor: measure_java(flavor, Path(scratch) / f"java-{flavor}", registry)
            for flavor in JAVA_VERSIONS
        }
    for name, numbers in [*python.items(), *(("java " + k, v) for k, v in java.items())]:
        print(f"{name}: {json.dumps(numbers)}")
    document = {
        "benchmark": "Library bundles: size per language and flavor, with and without"
        " deduplication, and the image layer as pushed",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(),
        "wall_seconds": round(time.perf_counter() - clock, 1),
        **python,
        "java": java,
    }
    write_results(RESULTS, document)
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
