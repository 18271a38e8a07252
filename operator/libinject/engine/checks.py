"""What a policy must also satisfy beyond the CRD schema (and so beyond `parse_policy`).

The webhook's index, the reconciler's status, rollouts and the offline CLI all refuse a policy
through `usable_policy`, so a policy whose status says Invalid never injects anything anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.api.parse import FieldError, InvalidPolicyError, parse_policy
from libinject.api.types import InstrumentationPolicy, LibrarySpec
from libinject.engine import references
from libinject.engine.versions import allows


def usable_policy(obj: Mapping[str, Any]) -> InstrumentationPolicy:
    """Parses like the API server, then applies the checks it cannot; InvalidPolicyError lists
    every problem either way."""
    policy = parse_policy(obj)
    if errors := semantic_errors(policy):
        raise InvalidPolicyError(policy.name, errors)
    return policy


def semantic_errors(policy: InstrumentationPolicy) -> list[FieldError]:
    """What the CRD schema cannot check, in the parser's error shape."""
    errors: list[FieldError] = []
    for index, library in enumerate(policy.spec.libraries):
        path = f"spec.libraries[{index}]"
        if not _version_allowed(library):
            allowed = ", ".join(library.allowed_versions)
            errors.append(
                FieldError(
                    f"{path}.version",
                    f'Invalid value: "{library.version}": not covered by allowedVersions '
                    f"[{allowed}]: add it, or a pattern that covers it",
                )
            )
        if library.image is not None:
            errors.extend(_image_errors(library.image, f"{path}.image"))
    return errors


def _image_errors(image: str, path: str) -> list[FieldError]:
    try:
        references.parse(image)
    except references.ReferenceError as error:
        return [FieldError(path, f"Invalid value: {error}")]
    return []


def _version_allowed(library: LibrarySpec) -> bool:
    """An empty allowedVersions lets pods choose nothing, so it cannot contradict the version."""
    if not library.allowed_versions:
        return True
    return any(allows(pattern, library.version) for pattern in library.allowed_versions)
