"""Which image of a library image this node unpacks: the node's own platform's.

A library image may be an OCI index (or a Docker manifest list) with one image per platform,
each holding only that platform's files; a node must unpack its own, as the kubelet's runtime
does for containers. A plain image (no index) is taken as it is, as the runtime takes it. The
digest a pinned reference is checked against is the one the reference names (the index's), and
the cache is keyed by the image's: two platforms never share an entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from libinject.engine import references

INDEX_TYPES = frozenset({
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
})  # fmt: skip


@dataclass(frozen=True)
class Resolved:
    digest: str  # of the manifest the reference names: an index, or the image itself
    image: str  # of the image this node unpacks


def resolve(manifest: bytes, platform: str) -> Resolved:
    """The digests of `manifest` (the registry's bytes, as served) and of the image in it for
    `platform` (`os/architecture`, a variant ignored). ValueError says why there is none."""
    digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    try:
        document = json.loads(manifest)
    except ValueError:
        raise ValueError("the registry's manifest is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("the registry's manifest is not a JSON object")
    if document.get("mediaType") not in INDEX_TYPES and "manifests" not in document:
        return Resolved(digest=digest, image=digest)
    children = document.get("manifests")
    if not isinstance(children, list):
        raise ValueError("the index has no list of manifests")
    offered = [_platform_of(child) for child in children]
    for child, name in zip(children, offered, strict=True):
        if name == platform:
            image = child.get("digest")
            if not isinstance(image, str) or not references.DIGEST.fullmatch(image):
                raise ValueError(f"the index's {platform} entry has no sha256 digest")
            return Resolved(digest=digest, image=image)
    listed = ", ".join(sorted({name for name in offered if name})) or "none named"
    raise ValueError(f"the index has no {platform} image (it has {listed})")


def _platform_of(child: Any) -> str:
    platform = child.get("platform") if isinstance(child, dict) else None
    if not isinstance(platform, dict):
        return ""
    return f"{platform.get('os', '')}/{platform.get('architecture', '')}"
