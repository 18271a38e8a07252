"""Library bundles and images for the tests, made with libinject's own commands.

`libinject bundle python` builds a bundle (its pip stages cached under the libinject cache, so
only the first run on a machine downloads wheels) and `libinject image` pushes it to the local
registry with crane, exactly as a user would. Registered as a pytest plugin by tests/conftest.py.
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

# The versions are images/python/versions' (the one list of the images we build).
VERSIONS_FILE = Path(__file__).parents[2] / "images" / "python" / "versions"
VERSIONS = dict(
    line.split()
    for line in VERSIONS_FILE.read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
DDTRACE = VERSIONS["ddtrace"]
OPENTELEMETRY = VERSIONS["opentelemetry"]
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
    """Bundles for the host's interpreter, one per (flavor, version), built once per session."""
    built: dict[tuple[str, str], Path] = {}

    def get(flavor: str, version: str = "") -> Path:
        key = (flavor, version or VERSIONS[flavor])
        if key not in built:
            out = tmp_path_factory.mktemp("bundle") / f"{flavor}-{key[1]}"
            build_bundle(flavor=flavor, out=out, targets=[host_target()], version=key[1])
            built[key] = out
        return built[key]

    return get


@pytest.fixture(scope="session")
def library_images(
    bundles: BundleFactory, registry: Registry, crane: Path, busybox: Path
) -> ImageFactory:
    """Pushed library images by flavor: `<registry>/libinject/python-<flavor>:<version>`."""
    pushed: dict[tuple[str, str], str] = {}

    def get(flavor: str, version: str = "") -> str:
        key = (flavor, version or VERSIONS[flavor])
        if key not in pushed:
            reference = library_image(
                registry=f"{registry.address}/libinject",
                language=Language.PYTHON,
                flavor=Flavor(flavor),
                version=key[1],
            )
            push_image(bundle=bundles(*key), reference=reference, crane=crane, busybox=busybox)
            pushed[key] = reference
        return pushed[key]

    return get
