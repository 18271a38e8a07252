"""Library images pinned by digest: every pod of a ReplicaSet gets the same bytes.

A tag can move between two pods of one rollout; a digest cannot. The operator resolves each
policy's image tags to digests in the background (libinject.runtime.digests) and hands the engine
what it knows; the admission path only reads that table. For one image reference:

- already pinned (`...@sha256:...`, a policy's own `image`): used as it is;
- resolved: `<reference>@<digest>`, the tag kept for people to read;
- not resolvable now, with a digest resolved before: that last known digest, and a note saying so;
- never resolved and not resolvable: the library is skipped, with the reason (a tag the operator
  cannot reach would give pods whatever the node's runtime finds, or nothing);
- not resolved yet (the operator just started, or a version a pod requested, which no policy
  names): the tag, and a note saying so.
Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libinject.engine.decision import Code, Reason


@dataclass(frozen=True)
class Pin:
    """What the operator knows of one image tag."""

    digest: str | None = None  # the digest it last resolved to (sha256:...)
    error: str | None = None  # why the latest resolution failed; None when it succeeded


@dataclass(frozen=True)
class Pinned:
    image: str  # the reference a pod gets
    digest: str | None = None
    note: str | None = None  # why the image is not pinned to a current digest
    refused: Reason | None = None  # why the library is skipped


def pinned(image: str, pins: Mapping[str, Pin] | None) -> Pinned:
    """The reference a pod gets for `image`, given what the operator resolved (None: nothing
    is resolved here, as in the offline CLI: the reference as it is)."""
    if "@" in image:
        return Pinned(image, digest=image.rpartition("@")[2])
    if pins is None:
        return Pinned(image)
    known = pins.get(image)
    if known is None:
        return Pinned(image, note="not resolved to a digest yet: the tag as it is")
    if known.digest is None:
        why = f"{image} cannot be resolved to a digest: {known.error or 'no answer yet'}"
        return Pinned(image, refused=Reason(Code.IMAGE_UNRESOLVED, why, image))
    note = None
    if known.error is not None:
        note = f"cannot be resolved now ({known.error}): the last known digest"
    return Pinned(f"{image}@{known.digest}", digest=known.digest, note=note)
