"""Library bundles and images for the tests, made with libinject's own commands.

`libinject bundle python` builds a Python bundle (its pip stages cached under the libinject
cache, so only the first run on a machine downloads wheels), `libinject bundle java` a Java one
(the agent jar from Maven Central, checked against images/java/locks/ and cached the same way),
`libinject bundle nodejs` a Node.js one (npm ci from images/nodejs/locks/, npm's cache kept
under the libinject cache), and `libinject image` pushes any of them to the local registry with
crane as an index of per-platform images, exactly as a user would. The fixtures' images hold
this machine's platform only (what the pod runner and the CSI plugin here unpack).
Registered as a pytest plugin by tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cluster import debian
from cluster.registry import Registry
from libinject.api.types import Flavor, Language
from libinject.engine.platforms import MACHINES, by_platform, node_platform
from libinject.engine.versions import library_image
from tools.gobuild import cache_root

IMAGES = Path(__file__).parents[2] / "images"
JAVA_LOCKS = IMAGES / "java" / "locks"
NODE_LOCKS = IMAGES / "nodejs" / "locks"


def library_versions(language: str) -> dict[str, str]:
    """images/<language>/versions (the one list of the images we build): flavor -> version."""
    lines = (IMAGES / language / "versions").read_text().splitlines()
    return dict(line.split() for line in lines if line.strip() and not line.startswith("#"))


VERSIONS = library_versions("python")
DDTRACE = VERSIONS["ddtrace"]
OPENTELEMETRY = VERSIONS["opentelemetry"]
JAVA_VERSIONS = library_versions("java")
NODE_VERSIONS = library_versions("nodejs")
LIBINJECT = Path(sys.executable).parent / "libinject"
PLATFORMS = tuple(machine.platform for machine in MACHINES)  # every library image's

BundleFactory = Callable[..., Path]
ImageFactory = Callable[..., str]


def host_target() -> str:
    """The tag of the interpreter running the tests (the one the pod runner's apps use)."""
    machine = sysconfig.get_platform().split("-")[-1]
    return f"cp{sys.version_info[0]}{sys.version_info[1]}-manylinux-{machine}"


def build_bundle(
    *,
    flavor: str,
    out: Path,
    targets: Sequence[str] = (),
    version: str = "",
    platform: str | None = None,
) -> dict[str, Any]:
    """Runs `libinject bundle python` into `out` (for one platform's image, or both); its
    report (sizes, targets, bytecode)."""
    command = [
        str(LIBINJECT),
        "bundle",
        "python",
        f"--flavor={flavor}",
        f"--version={version or VERSIONS[flavor]}",
        f"--out={out}",
        f"--cache={cache_root() / 'bundles'}",
        *(f"--target={tag}" for tag in targets),
        *([f"--platform={platform}"] if platform else []),
    ]
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return dict(json.loads(result.stdout))


def build_java_bundle(*, flavor: str, out: Path, version: str = "") -> dict[str, Any]:
    """Runs `libinject bundle java` into `out` with the committed locks; its report."""
    command = [
        str(LIBINJECT),
        "bundle",
        "java",
        f"--flavor={flavor}",
        f"--version={version or JAVA_VERSIONS[flavor]}",
        f"--out={out}",
        f"--locks={JAVA_LOCKS}",
        f"--cache={cache_root() / 'java'}",
    ]
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return dict(json.loads(result.stdout))


def build_node_bundle(
    *,
    flavor: str,
    out: Path,
    version: str = "",
    cache: Path | None = None,
    platform: str | None = None,
) -> dict[str, Any]:
    """Runs `libinject bundle nodejs` into `out` with the committed locks (for one platform's
    image, or both); its report."""
    command = [
        str(LIBINJECT),
        "bundle",
        "nodejs",
        f"--flavor={flavor}",
        f"--version={version or NODE_VERSIONS[flavor]}",
        f"--out={out}",
        f"--locks={NODE_LOCKS}",
        f"--cache={cache or cache_root() / 'npm'}",
        *([f"--platform={platform}"] if platform else []),
    ]
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return dict(json.loads(result.stdout))


def push_image(*, bundles: Mapping[str, Path], reference: str, crane: Path) -> str:
    """Runs `libinject image` for `bundles` (platform -> the bundle built for it), each with
    Debian's busybox for its platform; the index's tag with its digest (`...:4.16.0@sha256:...`)."""
    images = [
        argument
        for platform, bundle in bundles.items()
        for argument in ("--image", platform, str(bundle), str(debian.busybox(platform)))
    ]
    command = [str(LIBINJECT), "image", *images, f"--crane={crane}", f"--tag={reference}"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return done.stdout.splitlines()[0]


def run_build_script(
    *,
    language: str,
    flavor: str,
    version: str,
    repository: str,
    crane: Path,
    platforms: Sequence[str] = PLATFORMS,
    bundle_flags: str = "",
) -> subprocess.CompletedProcess[str]:
    """Runs images/build.sh as a user would, with Debian's busybox for each platform."""
    busyboxes = {
        f"BUSYBOX_{by_platform(platform).architecture.upper()}": str(debian.busybox(platform))
        for platform in platforms
    }
    env = {
        **os.environ,
        **busyboxes,
        "CRANE": str(crane),
        "LIBINJECT": str(LIBINJECT),
        "PLATFORMS": " ".join(platforms),
        "BUNDLE_FLAGS": bundle_flags,
    }
    command = [str(IMAGES / "build.sh"), language, flavor, version, repository]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> BundleFactory:
    """Bundles, one per (language, flavor, version), built once per session for this machine's
    platform: Python's for the host's interpreter only, Java's and Node.js's whole
    (`bundles("ddtrace", language="java")`)."""
    built: dict[tuple[str, str, str], Path] = {}

    def get(flavor: str, version: str = "", *, language: str = "python") -> Path:
        key = (language, flavor, version or library_versions(language)[flavor])
        if key not in built:
            out = tmp_path_factory.mktemp("bundle") / "-".join(key)
            if language == "java":
                build_java_bundle(flavor=flavor, out=out, version=key[2])
            elif language == "nodejs":
                build_node_bundle(flavor=flavor, out=out, version=key[2], platform=node_platform())
            else:
                build_bundle(flavor=flavor, out=out, targets=[host_target()], version=key[2])
            built[key] = out
        return built[key]

    return get


@pytest.fixture(scope="session")
def library_images(bundles: BundleFactory, registry: Registry, crane: Path) -> ImageFactory:
    """Pushed library images: `<registry>/libinject/<language>-<flavor>:<version>`, the name
    the engine gives them (`library_images("ddtrace")`, `library_images("ddtrace",
    language="java")`)."""
    pushed: dict[tuple[str, str, str], str] = {}

    def get(flavor: str, version: str = "", *, language: str = "python") -> str:
        key = (language, flavor, version or library_versions(language)[flavor])
        if key not in pushed:
            reference = library_image(
                registry=f"{registry.address}/libinject",
                language=Language(language),
                flavor=Flavor(flavor),
                version=key[2],
            )
            bundle = bundles(flavor, key[2], language=language)
            push_image(bundles={node_platform(): bundle}, reference=reference, crane=crane)
            pushed[key] = reference
        return pushed[key]

    return get
