"""Pushing images with go-containerregistry's `crane`: no Docker engine needed.

A multi-platform image is pushed in two steps. Each platform's image goes to `<tag>-<arch>`:
`crane append --oci-empty-base` uploads its layers onto an empty OCI image, and `crane mutate`
sets its platform and configuration. Then `crane index append` writes the OCI index over those
images (by digest) to `<tag>`, which pullers resolve to their own platform's image. The per-arch
tags stay, so one platform's image can be pulled by name.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class PushError(Exception):
    """crane failed; the message has its command and output."""


@dataclass(frozen=True)
class PlatformImage:
    platform: str  # linux/amd64
    layers: tuple[Path, ...]  # tar files, bottom first
    config: tuple[str, ...] = ()  # crane mutate's flags: --label, --entrypoint, --env, ...


def split_tag(reference: str) -> tuple[str, str]:
    """`host:port/repo:tag` -> (`host:port/repo`, `tag`); ValueError without a tag."""
    head, _, last = reference.rpartition("/")
    name, colon, tag = last.partition(":")
    if not colon or not tag or "@" in reference:
        raise ValueError(f"{reference!r}: give the image a tag (e.g. ...:1.2.3), not a digest")
    return f"{head}/{name}" if head else name, tag


def push_index(*, crane: Path, images: Sequence[PlatformImage], reference: str) -> list[str]:
    """Pushes every platform's image and the index over them to `reference` (a tag); the
    index's reference by digest, then each platform's, in the order given."""
    repository, tag = split_tag(reference)
    pushed = [
        push_image(crane=crane, image=image, reference=f"{repository}:{tag}-{_architecture(image)}")
        for image in images
    ]
    _crane(crane, "index", "append", *(f"-m={manifest}" for manifest in pushed), "-t", reference)
    return [f"{repository}@{_crane(crane, 'digest', reference).strip()}", *pushed]


def push_image(*, crane: Path, image: PlatformImage, reference: str) -> str:
    """Pushes one platform's image to `reference` (a tag); its reference by digest."""
    repository, _ = split_tag(reference)
    layers = [f"--new_layer={layer}" for layer in image.layers]
    _crane(crane, "append", "--oci-empty-base", *layers, "-t", reference)
    platform = f"--set-platform={image.platform}"
    _crane(crane, "mutate", reference, platform, *image.config, "-t", reference)
    return f"{repository}@{_crane(crane, 'digest', reference).strip()}"


def _architecture(image: PlatformImage) -> str:
    return image.platform.rpartition("/")[2]


def _crane(crane: Path, *args: str) -> str:
    result = subprocess.run([str(crane), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PushError(f"crane {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout
