"""Which version a pod gets: the policy's, unless the pod asks for one the policy allows; and
the one place that turns a library and a version into an image reference."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from libinject.api.types import Flavor, InstrumentationPolicy, Language, LibrarySpec, is_version
from libinject.engine.decision import Code, Reason

_SHOWN = 80  # how much of a refused request a message repeats
_ABSENT = object()  # no request (a manifest's null is one, and is refused as no version)


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


def container_version_annotation(container: str, language: str) -> str:
    """A request for one container: libinject.dev/<container>.<language>.version (a container's
    name is a DNS label, without dots, so the key reads back one way)."""
    return f"libinject.dev/{container}.{language}.version"


def resolve_version(
    library: LibrarySpec, annotations: Mapping[str, object]
) -> tuple[str, Reason | None]:
    """(version, reason) for the pod, where reason records a request granted or refused, else
    None."""
    key = version_annotation(library.language)
    requested = annotations.get(key, _ABSENT)
    return _judge(library, key=key, requested=requested, default=library.version)


def container_versions(
    library: LibrarySpec,
    annotations: Mapping[str, object],
    *,
    names: Iterable[str],
    default: str,
) -> tuple[dict[str, str], dict[str, Reason]]:
    """The versions the pod asks for its containers `names` other than `default` (the pod's),
    those granted by container; and a reason for each request, granted or refused (a request
    for `default` itself is none). Held to the same rules as the pod's own request."""
    granted: dict[str, str] = {}
    reasons: dict[str, Reason] = {}
    for name in names:
        key = container_version_annotation(name, library.language)
        requested = annotations.get(key, _ABSENT)
        version, reason = _judge(library, key=key, requested=requested, default=default)
        if reason is not None:
            reasons[name] = reason
        if version != default:
            granted[name] = version
    return granted, reasons


def _judge(
    library: LibrarySpec, *, key: str, requested: object, default: str
) -> tuple[str, Reason | None]:
    """The version a request under `key` gives (`default` without one, or when refused) and why.

    A request must be a version in the grammar of spec.libraries[].version before it is
    compared with allowedVersions: a pattern such as 2.* or anything carrying a digest, a path
    or a second tag is no version, and would otherwise reach the image reference.
    """
    if requested is _ABSENT or requested == default:
        return default, None
    if not is_version(requested):
        why = (
            f"{key}={shown(requested)} refused: not a version (1, 1.2, 1.2.3, optionally with a "
            f"suffix such as -rc.1; letters, digits, '.', '-'); using {default}"
        )
        return default, Reason(Code.VERSION_NOT_ALLOWED, why)
    if library.image:
        why = f"{key}={requested} refused: the policy pins the image {library.image}"
        return default, Reason(Code.VERSION_NOT_ALLOWED, why)
    if any(allows(pattern, requested) for pattern in library.allowed_versions):
        return requested, Reason(Code.VERSION_REQUESTED, f"{key}={requested} is allowed")
    allowed = ", ".join(library.allowed_versions) or "none"
    why = f"{key}={requested} refused: allowedVersions is [{allowed}]; using {default}"
    return default, Reason(Code.VERSION_NOT_ALLOWED, why)


def shown(value: object) -> str:
    """A refused value as a message may repeat it: quoted (so whitespace and control characters
    show), cut short, and only its type when it is no string (a YAML 2.10 is the float 2.1)."""
    if not isinstance(value, str):
        return f"<{type(value).__name__} {str(value)[:_SHOWN]}> (quote it: versions are strings)"
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


class InvalidVersionError(ValueError):
    """A version outside the grammar was about to become an image tag."""


@functools.lru_cache(maxsize=1024)  # a pod takes a few libraries of a few versions: all cached
def library_image(*, registry: str, language: Language, flavor: Flavor, version: str) -> str:
    """The default image of a library: <registry>/<language>-<flavor>:<version>.

    Every image reference built from a version goes through here (the webhook's and the CSI
    plugin's), so none can hold anything but a version of the grammar as its tag.
    """
    if not is_version(version):
        raise InvalidVersionError(f"{shown(version)} is not a library version")
    return f"{registry}/{Language(language)}-{Flavor(flavor)}:{version}"


def image_for(library: LibrarySpec, *, version: str, registry: str) -> str:
    """The image a pod gets for `library` at `version`: the policy's pinned image, or the
    default one."""
    if library.image:
        return library.image
    return library_image(
        registry=registry, language=library.language, flavor=library.flavor, version=version
    )


def policy_images(policy: InstrumentationPolicy, *, registry: str) -> list[str]:
    """The image tags a policy's libraries name at the policy's versions, in order and each once:
    what the operator resolves to digests (an image pinned by digest needs nothing)."""
    images = (
        image_for(library, version=library.version, registry=registry)
        for library in policy.spec.libraries
    )
    return list(dict.fromkeys(image for image in images if "@" not in image))
