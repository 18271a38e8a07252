"""Java library images, pushed without Docker: images/build.sh as a user runs it, and the
`library_images` fixture later live tests use. Each image is pulled back from the registry and
its copy step (the init container's `busybox cp`) run on it."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from cluster.imagefiles import ELF_MACHINES, crane_json, elf_machine, files_of, index_images
from cluster.libraries import (
    IMAGES,
    JAVA_LOCKS,
    JAVA_VERSIONS,
    BundleFactory,
    ImageFactory,
    run_build_script,
)
from cluster.podrunner.images import ImageStore
from cluster.registry import Registry
from libinject.api.types import Flavor, Language
from libinject.bundle.java.agents import AGENTS
from libinject.bundle.java.build import packaged_launcher
from libinject.bundle.java.locks import parse
from libinject.engine.delivery import IMAGE_LIBRARY_DIR
from libinject.engine.languages import JAVA_LAUNCHER
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
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))}


@pytest.mark.network  # the registry, crane, busybox and Maven Central on cold caches
def test_build_sh_pushes_the_java_image_the_engine_names(
    registry: Registry, crane: Path, tmp_path: Path
) -> None:
    """images/build.sh pushes `<repository>/java-<flavor>:<version>`, the very reference the
    engine puts in pods, as an OCI index of a linux/amd64 and a linux/arm64 image: each with
    its own machine's busybox and the same library (the agent is one jar for every machine).
    The copy step yields the locked agent, the launcher and the manifest, and each image's
    labels name the flavor and version."""
    flavor, version = "ddtrace", JAVA_VERSIONS["ddtrace"]
    repository = f"{registry.address}/libinject"
    done = run_build_script(
        language="java",
        flavor=flavor,
        version=version,
        repository=repository,
        crane=crane,
        bundle_flags=f"--cache {cache_root() / 'java'}",
    )
    assert done.returncode == 0, done.stderr
    reference = library_image(
        registry=repository, language=Language.JAVA, flavor=Flavor.DDTRACE, version=version
    )
    assert done.stdout.startswith(f"{reference}@sha256:")
    images = index_images(crane, reference)
    assert sorted(images) == ["linux/amd64", "linux/arm64"]
    files = {platform: files_of(crane, image) for platform, image in images.items()}
    for platform, held in files.items():
        assert elf_machine(held["bin/busybox"]) == ELF_MACHINES[platform]
        config = crane_json(crane, "config", images[platform])
        assert config["config"]["Labels"] == {
            "org.opencontainers.image.version": version,
            "dev.libinject.flavor": "ddtrace",
        }
    library = [
        {k: v for k, v in held.items() if k.startswith("libinject/")} for held in files.values()
    ]
    assert library[0] == library[1]
    volume = _copied(ImageStore(crane, tmp_path / "store"), reference, tmp_path)
    agent = AGENTS[Flavor.DDTRACE].jar
    assert sorted(p.name for p in volume.iterdir()) == sorted([agent, JAVA_LAUNCHER, "bundle.txt"])
    lock = parse((JAVA_LOCKS / f"{flavor}-{version}.lock").read_text())
    assert hashlib.sha256((volume / agent).read_bytes()).hexdigest() == lock.sha256
    assert (volume / JAVA_LAUNCHER).read_bytes() == packaged_launcher().read_bytes()


@pytest.mark.network
def test_the_fixture_serves_a_java_image_holding_exactly_the_bundle(
    library_images: ImageFactory, bundles: BundleFactory, crane: Path, tmp_path: Path
) -> None:
    """`library_images(flavor, language="java")` pushes the Java bundle under the engine's
    name for it; what the copy step yields is that bundle, file for file and byte for byte."""
    reference = library_images("opentelemetry", language="java")
    assert reference.endswith(f"/libinject/java-opentelemetry:{JAVA_VERSIONS['opentelemetry']}")
    volume = _copied(ImageStore(crane, tmp_path / "store"), reference, tmp_path)
    assert _files(volume) == _files(bundles("opentelemetry", language="java"))


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"BUSYBOX_AMD64": "/bin/busybox"}, "set BUSYBOX_ARM64 to a static busybox for arm64"),
        ({"PLATFORMS": "linux/amd64 linux/s390x", "BUSYBOX_AMD64": "/bin/busybox"},
         "no images for platform linux/s390x"),
    ],
)  # fmt: skip
def test_build_sh_checks_every_platform_before_building(
    env: dict[str, str], why: str, tmp_path: Path
) -> None:
    """A platform without its busybox, or one no image is built for, stops images/build.sh
    before the first bundle is built (LIBINJECT would leave a mark if it ran)."""
    marker = tmp_path / "ran"
    fake = tmp_path / "libinject"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    script = str(IMAGES / "build.sh")
    done = subprocess.run(
        [script, "java", "ddtrace", JAVA_VERSIONS["ddtrace"], "127.0.0.1:1/libinject"],
        env={"PATH": os.environ["PATH"], "CRANE": "crane", "LIBINJECT": str(fake), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert why in done.stderr
    assert not marker.exists()
