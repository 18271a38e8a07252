"""Node.js library images, pushed without Docker: images/build.sh as a user runs it, and
the `library_images` fixture later live tests use. Each image is pulled back from the registry
and its copy step (the init container's `busybox cp`) run on it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cluster.imagefiles import ELF_MACHINES, crane_json, elf_machine, files_of, index_images
from cluster.libraries import NODE_VERSIONS, BundleFactory, ImageFactory, run_build_script
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
def test_build_sh_pushes_one_image_per_platform_with_its_own_addons(
    registry: Registry, crane: Path, tmp_path: Path
) -> None:
    """images/build.sh pushes `<repository>/nodejs-<flavor>:<version>`, the very reference the
    engine puts in pods, as an OCI index of a linux/amd64 and a linux/arm64 image. dd-trace's
    native addons come built for every machine; each image holds only its own machine's (glibc
    and musl), its busybox too, and no 32-bit or other machine's code. The copy step yields the
    loader, node_modules with the tracer and the manifest; the labels name flavor and version."""
    flavor, version = "ddtrace", NODE_VERSIONS["ddtrace"]
    repository = f"{registry.address}/libinject"
    done = run_build_script(
        language="nodejs",
        flavor=flavor,
        version=version,
        repository=repository,
        crane=crane,
        bundle_flags=f"--cache {cache_root() / 'npm'}",
    )
    assert done.returncode == 0, done.stderr
    reference = library_image(
        registry=repository, language=Language.NODEJS, flavor=Flavor.DDTRACE, version=version
    )
    assert done.stdout.startswith(f"{reference}@sha256:")
    images = index_images(crane, reference)
    assert sorted(images) == ["linux/amd64", "linux/arm64"]
    for platform, image in images.items():
        held = files_of(crane, image)
        machines = {path: elf_machine(content) for path, content in held.items()}
        code = {path: machine for path, machine in machines.items() if machine is not None}
        assert set(code.values()) == {ELF_MACHINES[platform]}, platform
        addons = [path for path in code if path.endswith(".node")]
        assert any(".musl." in path or "musl" in path.split("/")[-2] for path in addons)
        assert any(".musl." not in path and "musl" not in path.split("/")[-2] for path in addons)
        labels = crane_json(crane, "config", image)["config"]["Labels"]
        assert labels == {
            "org.opencontainers.image.version": version,
            "dev.libinject.flavor": flavor,
        }
    volume = _copied(ImageStore(crane, tmp_path / "store"), reference, tmp_path)
    assert sorted(p.name for p in volume.iterdir()) == sorted(
        [NODE_LOADER, "bundle.txt", "node_modules"]
    )
    assert (volume / NODE_LOADER).read_bytes() == packaged_loader().read_bytes()
    tracer = volume / "node_modules/dd-trace/package.json"
    assert f'"version": "{version}"' in tracer.read_text()


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
