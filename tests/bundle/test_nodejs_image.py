"""Node.js library images, pushed without Docker: images/nodejs/build.sh as a user runs it, and
the `library_images` fixture later live tests use. Each image is pulled back from the registry
and its copy step (the init container's `busybox cp`) run on it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cluster.libraries import IMAGES, LIBINJECT, NODE_VERSIONS, BundleFactory, ImageFactory
from cluster.podrunner.images import ImageStore
from cluster.registry import Registry
from libinject.api.types import Flavor, Language
from libinject.bundle.nodejs.build import packaged_loader
from libinject.engine.delivery import IMAGE_LIBRARY_DIR
from libinject.engine.languages import NODE_LOADER
from libinject.engine.versions import library_image
from tools.gobuild import cache_root


def _copied(store: ImageStore, reference: str, tmp_path: Path) -> Path:
    """What the init container leaves in the pod's volume: the image unpacked, then its own
    busybox copying its library directory into an empty one."""
    image, volume = tmp_path / "image", tmp_path / "volume"
    store.unpack(reference, image)
    volume.mkdir()
    library = image / IMAGE_LIBRARY_DIR.lstrip("/")
    copy = [str(image / "bin" / "busybox"), "cp", "-R", f"{library}/.", str(volume)]
    subprocess.run(copy, check=True)
    return volume


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.network  # the registry, crane, busybox and the npm registry on cold caches
def test_build_sh_pushes_the_nodejs_image_the_engine_names(
    registry: Registry, crane: Path, busybox: Path, tmp_path: Path
) -> None:
    """images/nodejs/build.sh pushes `<repository>/nodejs-<flavor>:<version>`, the very
    reference the engine puts in pods; the copy step yields the loader, node_modules with the
    tracer and the manifest, and the image's labels name the flavor and version."""
    flavor, version = "opentelemetry", NODE_VERSIONS["opentelemetry"]
    repository = f"{registry.address}/libinject"
    env = {
        **os.environ,
        "CRANE": str(crane),
        "BUSYBOX": str(busybox),
        "LIBINJECT": str(LIBINJECT),
        "BUNDLE_FLAGS": f"--cache {cache_root() / 'npm'}",
    }
    command = [str(IMAGES / "nodejs" / "build.sh"), flavor, version, repository]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    reference = library_image(
        registry=repository, language=Language.NODEJS, flavor=Flavor.OPENTELEMETRY, version=version
    )
    assert done.stdout.startswith(f"{reference}@sha256:")
    volume = _copied(ImageStore(crane, tmp_path / "store"), reference, tmp_path)
    assert sorted(p.name for p in volume.iterdir()) == sorted(
        [NODE_LOADER, "bundle.txt", "node_modules"]
    )
    assert (volume / NODE_LOADER).read_bytes() == packaged_loader().read_bytes()
    tracer = volume / "node_modules/@opentelemetry/auto-instrumentations-node/package.json"
    assert f'"version": "{version}"' in tracer.read_text()
    config = subprocess.run(
        [str(crane), "config", reference], capture_output=True, text=True, check=True
    ).stdout
    assert f'"org.opencontainers.image.version":"{version}"' in config
    assert '"dev.libinject.flavor":"opentelemetry"' in config


@pytest.mark.network
def test_the_fixture_serves_a_nodejs_image_holding_exactly_the_bundle(
    library_images: ImageFactory, bundles: BundleFactory, crane: Path, tmp_path: Path
) -> None:
    """`library_images(flavor, language="nodejs")` pushes the Node.js bundle under the engine's
    name for it; what the copy step yields is that bundle, file for file and byte for byte."""
    reference = library_images("ddtrace", language="nodejs")
    assert reference.endswith(f"/libinject/nodejs-ddtrace:{NODE_VERSIONS['ddtrace']}")
    volume = _copied(ImageStore(crane, tmp_path / "store"), reference, tmp_path)
    assert _files(volume) == _files(bundles("ddtrace", language="nodejs"))
