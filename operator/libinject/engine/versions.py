"""Which version a pod gets: the policy's, unless the pod asks for one the policy allows."""

from __future__ import annotations

from collections.abc import Mapping

from libinject.api.types import LibrarySpec
from libinject.engine.decision import Code, Reason


def version_annotation(language: str) -> str:
    return f"libinject.dev/{language}.version"


def allows(pattern: str, version: str) -> bool:
    """'*' allows all; '2.*' allows 2 and 2.x.y; anything else must be equal."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        prefix = pattern[:-2]
        return version == prefix or version.startswith(prefix + ".")
    return version == pattern


def resolve_version(
    library: LibrarySpec, annotations: Mapping[str, str]
) -> tuple[str, Reason | None]:
    """(version, reason) where reason records a request granted or refused, else None."""
    key = version_annotation(library.language)
    requested = annotations.get(key)
    if requested is None or requested == library.version:
        return library.version, None
    if library.image:
        why = f"{key}={requested} refused: the policy pins the image {library.image}"
        return library.version, Reason(Code.VERSION_NOT_ALLOWED, why)
    if any(allows(pattern, requested) for pattern in library.allowed_versions):
        return requested, Reason(Code.VERSION_REQUESTED, f"{key}={requested} is allowed")
    allowed = ", ".join(library.allowed_versions) or "none"
    why = f"{key}={requested} refused: allowedVersions is [{allowed}]; using {library.version}"
    return library.version, Reason(Code.VERSION_NOT_ALLOWED, why)
