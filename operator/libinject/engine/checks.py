"""What a policy must also satisfy beyond the CRD schema (and so beyond `parse_policy`).

The webhook's index, the reconciler's status, rollouts and the offline CLI all refuse a policy
through `usable_policy`, so a policy whose status says Invalid never injects anything anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from libinject.api.parse import FieldError, InvalidPolicyError, parse_policy
from libinject.api.types import InstrumentationPolicy, LibrarySpec
from libinject.engine.versions import allows

# An image reference as container runtimes parse it (the distribution/reference grammar, without
# IPv6 hosts): [host[:port]/]path[/path...][:tag][@digest]. The API's IMAGE_PATTERN only checks
# the first character, whitespace and the digest; this adds lowercase paths and non-empty tags.
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# ASCII only: Python's \w would take any script's letters and digits, which no runtime accepts.
_IMAGE_REFERENCE = re.compile(
    rf"(?:{_HOST}/)?{_PATH_PART}(?:/{_PATH_PART})*(?::\w[\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?",
    re.ASCII,
)


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
        if library.image is not None and not _IMAGE_REFERENCE.fullmatch(library.image):
            errors.append(
                FieldError(
                    f"{path}.image",
                    f'Invalid value: "{library.image}": not an image reference (lowercase '
                    "repository path, optional :tag that is not empty, optional @sha256:digest)",
                )
            )
    return errors


def _version_allowed(library: LibrarySpec) -> bool:
    """An empty allowedVersions lets pods choose nothing, so it cannot contradict the version."""
    if not library.allowed_versions:
        return True
    return any(allows(pattern, library.version) for pattern in library.allowed_versions)
