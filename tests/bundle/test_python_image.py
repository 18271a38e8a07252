"""The Python library image as one OCI index with an image per platform (`libinject bundle
python --platform`, then `libinject image`), read back from a local registry: each platform's
image holds only its own machine's sites and code."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.imagefiles import ELF_MACHINES, crane_json, elf_machine, files_of, index_images
from cluster.libraries import DDTRACE, build_bundle, push_image
from cluster.registry import Registry
from libinject.engine.platforms import by_platform


@pytest.mark.network  # the registry, crane, busybox and PyPI on cold caches
def test_each_platforms_image_holds_only_its_own_sites_and_code(
    registry: Registry, crane: Path, tmp_path: Path
) -> None:
    """Bundles for CPython 3.11 on glibc, one per platform, pushed as one index: the amd64 image
    has the x86_64 site and x86-64 code only (ddtrace's extension modules, busybox), the arm64
    image the aarch64 site and AArch64 code only; both carry the release's labels."""
    bundles = {}
    for platform in ("linux/amd64", "linux/arm64"):
        target = f"cp311-manylinux-{by_platform(platform).uname}"
        bundles[platform] = tmp_path / platform.replace("/", "-")
        report = build_bundle(
            flavor="ddtrace", out=bundles[platform], targets=[target], platform=platform
        )
        assert report["targets"] == [target]
    reference = f"{registry.address}/libinject/python-ddtrace:{DDTRACE}"
    assert push_image(bundles=bundles, reference=reference, crane=crane).startswith(
        f"{reference}@sha256:"
    )
    images = index_images(crane, reference)
    assert sorted(images) == sorted(bundles)
    for platform, image in images.items():
        held = files_of(crane, image)
        sites = {path.split("/")[2] for path in held if path.startswith("libinject/sites/")}
        assert sites == {f"cp311-manylinux-{by_platform(platform).uname}"}
        code = {path: elf_machine(content) for path, content in held.items()}
        code = {path: machine for path, machine in code.items() if machine is not None}
        assert any(path.endswith(".so") for path in code)  # ddtrace's extension modules
        assert set(code.values()) == {ELF_MACHINES[platform]}, platform
        labels = crane_json(crane, "config", image)["config"]["Labels"]
        assert labels["org.opencontainers.image.version"] == DDTRACE
