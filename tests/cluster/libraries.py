"""Library bundles and images for the tests, made with libinject's own commands.

`libinject bundle python` builds a Python bundle (its pip stages cached under the libinject
cache, so only the first run on a machine downloads wheels), `libinject bundle java` a Java one
(the agent jar from Maven Central, checked against images/java/locks/ and cached the same way),
`libinject bundle nodejs` a Node.js one (npm ci from images/nodejs/locks/, npm's cache kept
under the libinject cache), and `libinject image` pushes any of them to the local registry with
crane, exactly as a user would.
Registered as a pytest plugin by tests/conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from cluster.registry import Registry
from libinject.api.types import Flavor, Language
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

BundleFactory = Callable[..., Path]
ImageFactory = Callable[..., str]


def host_target() -> str:
    """The tag of the interpreter running the tests (the one the pod runner's apps use)."""
    machine = sysconfig.get_platform().split("-")[-1]
    return f"cp{sys.version_info[0]}{sys.version_info[1]}-manylinux-{machine}"


def build_bundle(
    *, flavor: str, out: Path, targets: Sequence[str] = (), version: str = ""
) -> dict[str, Any]:
    """Runs `libinject bundle python` into `out`; its report (sizes, targets, bytecode)."""
    command = [
        str(LIBINJECT),
        "bundle",
        "python",
        f"--flavor={flavor}",
        f"--version={version or VERSIONS[flavor]}",
        f"--out={out}",
        f"--cache={cache_root() / 'bundles'}",
        *(f"--target={tag}" for tag in targets),
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
    *, flavor: str, out: Path, version: str = "", cache: Path | None = None
) -> dict[str, Any]:
    """Runs `libinject bundle nodejs` into `out` with the committed locks; its report."""
    command = [
        str(LIBINJECT),
        "bundle",
        "nodejs",
        f"--flavor={flavor}",
        f"--version={version or NODE_VERSIONS[flavor]}",
        f"--out={out}",
        f"--locks={NODE_LOCKS}",
        f"--cache={cache or cache_root() / 'npm'}",
    ]
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return dict(json.loads(result.stdout))


def push_image(*, bundle: Path, reference: str, crane: Path, busybox: Path) -> str:
    command = [
        str(LIBINJECT),
        "image",
        f"--bundle={bundle}",
        f"--copy-program={busybox}",
        f"--crane={crane}",
        f"--tag={reference}",
    ]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> BundleFactory:
    """Bundles, one per (language, flavor, version), built once per session: Python's for the
    host's interpreter only; Java's and Node.js's whole (`bundles("ddtrace", language="java")`)."""
    built: dict[tuple[str, str, str], Path] = {}

    def get(flavor: str, version: str = "", *, language: str = "python") -> Path:
        key = (language, flavor, version or library_versions(language)[flavor])
        if key not in built:
            out = tmp_path_factory.mktemp("bundle") / "-".join(key)
            if language == "java":
                build_java_bundle(flavor=flavor, out=out, version=key[2])
            elif language == "nodejs":
                build_node_bundle(flavor=flavor, out=out, version=key[2])
            else:
                build_bundle(flavor=flavor, out=out, targets=[host_target()], version=key[2])
            built[key] = out
        return built[key]

    return get


@pytest.fixture(scope="session")
def library_images(
    bundles: BundleFactory, registry: Registry, crane: Path, busybox: Path
) -> ImageFactory:
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
            push_image(bundle=bundle, reference=reference, crane=crane, busybox=busybox)
            pushed[key] = reference
        return pushed[key]

    return get
