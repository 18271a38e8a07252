"""How big a Python library image is, and what storing identical files once saves.

`make bench` writes `bench/results/bundle-size.json`: for each flavor, the full bundle (every
interpreter 3.9-3.14, manylinux and musllinux, x86_64 and aarch64) built by `libinject bundle`:
  plain_install_bytes   the sum of the plain `pip install --target` of every target
  apparent_bytes        the bundle without deduplication (each path counted)
  stored_bytes          the bundle as stored: identical files kept once (hard links), which is
                        what the image layer holds
The pip stages are cached, so only the first run on a machine downloads wheels.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.stats import environment, write_results
from cluster.libraries import VERSIONS, build_bundle

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
        **{key.replace("_bytes", "_mib"): round(value / MIB, 1) for key, value in sizes.items()},
        "stored_over_plain": round(sizes["stored_bytes"] / sizes["plain_install_bytes"], 3),
        "bytecode_for": report["bytecode"],
        "excluded": report["excluded"],
    }


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="libinject-bench-") as scratch:
        flavors = {flavor: measure(flavor, Path(scratch) / flavor) for flavor in VERSIONS}
    for flavor, numbers in flavors.items():
        print(f"{flavor}: {json.dumps(numbers)}")
    document = {
        "benchmark": "Python library bundles: size per flavor, with and without deduplication",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(),
        "wall_seconds": round(time.perf_counter() - clock, 1),
        **flavors,
    }
    write_results(RESULTS, document)
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
