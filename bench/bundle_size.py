"""How big each library image is, per platform, and what storing identical files once saves.

`make bench` writes `bench/results/bundle-size.json`.

Python, per flavor: the bundle for every node (every interpreter 3.9-3.14, manylinux and
musllinux, x86_64 and aarch64) built by `libinject bundle python`:
  plain_install_bytes   the sum of the plain `pip install --target` of every target
  apparent_bytes        the bundle without deduplication (each path counted)
  stored_bytes          the bundle as stored: identical files kept once (hard links)
  bytecode_bytes        of that, the compiled bytecode (`.pyc`, each stored file once)
  debug_section_bytes   the extension modules' ELF `.debug_*` sections (each stored file once),
                        kept: see libinject.bundle.siteprune
  pruned_by_rule        what pruning left out per rule (every site counted)
  platforms             the image a node pulls, below

Under `java`, per flavor: the bundle built by `libinject bundle java` (one for every machine):
  agent_jar_bytes       the agent jar as Maven Central serves it (its committed lock's size)
  stored_bytes          the bundle on disk: the agent, the launcher and bundle.txt
  platforms             the image a node pulls, below

Under `nodejs`, per flavor: the bundle `libinject bundle nodejs` builds from the committed lock
for every node (linux x64 and arm64, glibc and musl):
  npm_install_bytes     a plain `npm install <package>@<version>` on this machine (no lock: what
                        a user gets today, for this platform only)
  plain_install_bytes   `npm ci` of the committed lock for linux x64 glibc alone
  platforms_bytes       the four platforms' packages together, as npm installed them
  pruned_bytes          what pruning removed (files the runtime never reads)
  stored_bytes          the bundle as stored, deduplicated
  platforms             the image a node pulls, below

`platforms`, per platform (linux/amd64, linux/arm64) of the library image, an OCI index pushed
to a local registry by `libinject image` from bundles built with `--platform` (only the code
that platform runs):
  bundle_stored_bytes   that platform's bundle as stored (identical files once)
  layer_gzip_bytes      its image's one layer (bundle and busybox) as the registry stores it,
                        gzip-compressed by crane: what a node of that platform downloads
The pip stages, the agent jars and npm's cache are kept, so only the first run on a machine
downloads packages.
"""

from __future__ import annotations

import json
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import environment, write_results
from cluster import build
from cluster.imagefiles import index_images
from cluster.libraries import (
    JAVA_VERSIONS,
    NODE_VERSIONS,
    PLATFORMS,
    VERSIONS,
    build_bundle,
    build_java_bundle,
    build_node_bundle,
    push_image,
)
from cluster.registry import Registry
from libinject.api.types import Flavor, Language
from libinject.bundle.dedup import sizes
from libinject.bundle.nodejs.flavors import FLAVORS
from libinject.engine.versions import library_image
from tools.gobuild import cache_root

RESULTS = Path(__file__).parent / "results" / "bundle-size.json"
MIB = 1 << 20


def measure(flavor: str, scratch: Path, registry: Registry) -> dict[str, object]:
    bundle = scratch / flavor
    report = build_bundle(flavor=flavor, out=bundle)
    per_platform = {
        platform: build_bundle(
            flavor=flavor, out=_platform_dir(bundle, platform), platform=platform
        )
        for platform in PLATFORMS
    }
    numbers = {
        **{key: report[key] for key in ("plain_install_bytes", "apparent_bytes", "stored_bytes")},
        "bytecode_bytes": sum(p.stat().st_size for p in stored_files(bundle, "*.pyc")),
        "debug_section_bytes": sum(map(debug_section_bytes, stored_files(bundle, "*.so*"))),
    }
    return {
        "version": VERSIONS[flavor],
        "targets": len(report["targets"]),
        "files": report["files"],
        **numbers,
        **_mib(numbers),
        "stored_over_plain": round(numbers["stored_bytes"] / numbers["plain_install_bytes"], 3),
        "platforms": platform_images(
            {platform: _platform_dir(bundle, platform) for platform in per_platform},
            registry=registry,
            language=Language.PYTHON,
            flavor=flavor,
        ),
        "bytecode_for": report["bytecode"],
        "excluded": report["excluded"],
        "pruned_by_rule": report["pruned"]["by_rule"],
    }


def stored_files(root: Path, pattern: str) -> Iterator[Path]:
    """The regular files under `root` whose names match `pattern`, each stored file (inode)
    once, as the image layer holds them."""
    seen: set[int] = set()
    for path in root.rglob(pattern):
        if path.is_file() and not path.is_symlink():
            inode = path.stat().st_ino
            if inode not in seen:
                seen.add(inode)
                yield path


def debug_section_bytes(path: Path) -> int:
    """The bytes of the `.debug_*` sections of the ELF file at `path` (0 for any other file)."""
    sections = elf_sections(path.read_bytes())
    return sum(size for name, size in sections if name.startswith(".debug_"))


def elf_sections(image: bytes) -> list[tuple[str, int]]:
    """(name, size) of each section of a little-endian ELF64 file, from its section headers
    (field offsets as the ELF specification gives them); [] for anything else."""
    if image[:4] != b"\x7fELF" or image[4] != 2 or image[5] != 1:
        return []
    (offset,) = struct.unpack_from("<Q", image, 0x28)  # e_shoff
    # e_shentsize, e_shnum, e_shstrndx
    entry, count, names = struct.unpack_from("<HHH", image, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", image, offset + i * entry) for i in range(count)]
    strings = headers[names][4]  # sh_offset of the section-name table
    sections = []
    for name, _type, _flags, _address, _offset, size in headers:
        end = image.index(b"\0", strings + name)
        sections.append((image[strings + name : end].decode(), size))
    return sections


def measure_java(flavor: str, scratch: Path, registry: Registry) -> dict[str, object]:
    version = JAVA_VERSIONS[flavor]
    bundle = scratch / f"java-{flavor}"
    report = build_java_bundle(flavor=flavor, out=bundle)
    numbers = {
        "agent_jar_bytes": (bundle / report["agent"]).stat().st_size,
        "stored_bytes": sizes(bundle).stored,
    }
    images = platform_images(
        dict.fromkeys(PLATFORMS, bundle), registry=registry, language=Language.JAVA, flavor=flavor
    )
    return {"version": version, **numbers, **_mib(numbers), "platforms": images}


def platform_images(
    bundles: dict[str, Path], *, registry: Registry, language: Language, flavor: str
) -> dict[str, dict[str, object]]:
    """Pushes `bundles` (platform -> its bundle) as the library image's index; per platform,
    the bundle as stored and the image's one layer as the registry stores it."""
    versions = {
        Language.PYTHON: VERSIONS,
        Language.JAVA: JAVA_VERSIONS,
        Language.NODEJS: NODE_VERSIONS,
    }[language]
    reference = library_image(
        registry=f"{registry.address}/libinject",
        language=language,
        flavor=Flavor(flavor),
        version=versions[flavor],
    )
    crane = build.binaries()["crane"]
    push_image(bundles=bundles, reference=reference, crane=crane)
    images = index_images(crane, reference)
    found: dict[str, dict[str, object]] = {}
    for platform, bundle in bundles.items():
        numbers = {
            "bundle_stored_bytes": sizes(bundle).stored,
            "layer_gzip_bytes": layer_size(images[platform]),
        }
        found[platform] = {**numbers, **_mib(numbers)}
    return found


def _platform_dir(bundle: Path, platform: str) -> Path:
    return bundle.with_name(f"{bundle.name}-{platform.replace('/', '-')}")


def measure_node(flavor: str, scratch: Path, registry: Registry) -> dict[str, object]:
    version = NODE_VERSIONS[flavor]
    bundle = scratch / f"nodejs-{flavor}"
    report = build_node_bundle(flavor=flavor, out=bundle)
    for platform in PLATFORMS:
        build_node_bundle(flavor=flavor, out=_platform_dir(bundle, platform), platform=platform)
    numbers = {
        "npm_install_bytes": npm_install(f"{FLAVORS[Flavor(flavor)].tracer}@{version}", scratch),
        "plain_install_bytes": report["plain_install_bytes"],
        "platforms_bytes": report["platforms_install_bytes"],
        "pruned_bytes": report["pruned"]["bytes"],
        "stored_bytes": report["stored_bytes"],
    }
    images = platform_images(
        {platform: _platform_dir(bundle, platform) for platform in PLATFORMS},
        registry=registry,
        language=Language.NODEJS,
        flavor=flavor,
    )
    return {
        "version": version,
        "files": report["files"],
        **numbers,
        **_mib(numbers),
        "stored_over_npm_install": round(numbers["stored_bytes"] / numbers["npm_install_bytes"], 3),
        "platforms": images,
        "pruned_by_rule": report["pruned"]["by_rule"],
    }


def npm_install(package: str, scratch: Path) -> int:
    """The bytes of a plain `npm install` of `package` in an empty project (no lock)."""
    project = scratch / f"npm-install-{package.replace('/', '_')}"
    project.mkdir()
    command = [
        "npm",
        "install",
        package,
        "--omit=dev",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        f"--cache={cache_root() / 'npm'}",
    ]
    subprocess.run(command, cwd=project, check=True, capture_output=True)
    return sizes(project / "node_modules").stored


def layer_size(reference: str) -> int:
    """The compressed size of the image's one layer, from its manifest in the registry."""
    done = subprocess.run(
        [str(build.binaries()["crane"]), "manifest", reference],
        capture_output=True,
        text=True,
        check=True,
    )
    (layer,) = json.loads(done.stdout)["layers"]
    return int(layer["size"])


def _mib(numbers: dict[str, Any]) -> dict[str, float]:
    return {key.replace("_bytes", "_mib"): round(value / MIB, 2) for key, value in numbers.items()}


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="libinject-bench-") as scratch, Registry() as registry:
        flavors = {flavor: measure(flavor, Path(scratch), registry) for flavor in VERSIONS}
        java = {flavor: measure_java(flavor, Path(scratch), registry) for flavor in JAVA_VERSIONS}
        nodejs = {flavor: measure_node(flavor, Path(scratch), registry) for flavor in NODE_VERSIONS}
    for flavor, numbers in flavors.items():
        print(f"{flavor}: {json.dumps(numbers)}")
    for flavor, numbers in java.items():
        print(f"java {flavor}: {json.dumps(numbers)}")
    for flavor, numbers in nodejs.items():
        print(f"nodejs {flavor}: {json.dumps(numbers)}")
    document = {
        "benchmark": "Library bundles and images: Python with and without deduplication, Java"
        " beside the agent jar, Node.js beside a plain npm install",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(),
        "wall_seconds": round(time.perf_counter() - clock, 1),
        **flavors,
        "java": java,
        "nodejs": nodejs,
    }
    write_results(RESULTS, document)
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
