"""Which image of a library image a node unpacks (libinject.csi.platforms, pure): its own
platform's from an index or a Docker manifest list, a plain image as it is; a pinned reference is
checked against the digest of what it names, the cache keyed by the image's."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from libinject.csi.platforms import resolve

AMD64 = "sha256:" + "a" * 64
ARM64 = "sha256:" + "b" * 64
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def index(*entries: tuple[str, str, str], media_type: str | None = OCI_INDEX) -> bytes:
    """An index over (os, architecture, digest) entries, as a registry serves its bytes."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
             "size": 1, "platform": {"os": os_name, "architecture": arch}}
            for os_name, arch, digest in entries
        ],
    }  # fmt: skip
    if media_type is not None:
        document["mediaType"] = media_type
    return json.dumps(document, indent=3).encode()


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST, None])
def test_each_node_gets_its_own_platforms_image_and_the_index_digest_is_of_the_bytes(
    media_type: str | None,
) -> None:
    served = index(("linux", "amd64", AMD64), ("linux", "arm64", ARM64), media_type=media_type)
    on_amd64 = resolve(served, "linux/amd64")
    on_arm64 = resolve(served, "linux/arm64")
    assert (on_amd64.image, on_arm64.image) == (AMD64, ARM64)
    # What a pinned reference is checked against: the digest of the bytes as served (not of a
    # re-encoding: the same document formatted otherwise has another digest).
    assert on_amd64.digest == on_arm64.digest == sha256(served)
    assert sha256(json.dumps(json.loads(served)).encode()) != on_amd64.digest


def test_a_plain_image_is_taken_as_it_is_on_any_node() -> None:
    manifest = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
    resolved = resolve(manifest, "linux/arm64")
    assert resolved.digest == resolved.image == sha256(manifest)


def test_an_index_without_the_nodes_platform_is_refused_naming_what_it_has() -> None:
    served = index(("linux", "amd64", AMD64), ("unknown", "unknown", ARM64))
    with pytest.raises(
        ValueError, match=r"no linux/arm64 image \(it has linux/amd64, unknown/unknown\)"
    ):
        resolve(served, "linux/arm64")


@pytest.mark.parametrize(
    ("served", "why"),
    [
        (b"<html>proxy error</html>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"mediaType": OCI_INDEX, "manifests": "x"}).encode(), "no list of manifests"),
        (index(("linux", "arm64", "sha256:../../etc")), "no sha256 digest"),
        (index(("linux", "arm64", "md5:" + "c" * 32)), "no sha256 digest"),
    ],
)
def test_a_hostile_or_broken_manifest_is_refused_with_the_reason(served: bytes, why: str) -> None:
    """Nothing from the registry reaches a cache path unless it is a sha256 digest."""
    with pytest.raises(ValueError, match=why):
        resolve(served, "linux/arm64")
