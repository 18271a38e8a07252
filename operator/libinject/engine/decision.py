"""Decisions are data: every deciding step yields a `Reason`; the engine returns a `Decision`.

The webhook renders a decision as a patch, annotations, log lines and metrics; `libinject explain`
prints it; `libinject inject` writes the mutated objects. Nothing decides with a bare bool.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum

from libinject.api.types import EnvVar, Flavor, Language, Mode, TracingSpec


class Code(StrEnum):
    # Whether the pod is considered at all (namespace and pod level).
    NAMESPACE_EXCLUDED = "NamespaceExcluded"
    NAMESPACE_DISABLED = "NamespaceDisabled"
    NAMESPACE_NOT_ENABLED = "NamespaceNotEnabled"
    NAMESPACE_ENABLED = "NamespaceEnabled"
    POD_OPTED_OUT = "PodOptedOut"
    WINDOWS_POD = "WindowsPod"
    NO_CONTAINERS = "NoContainers"
    MALFORMED_POD = "MalformedPod"  # a field of the wrong type (engine.shape); admitted as is
    POD_TOO_LARGE = "PodTooLarge"
    # Policy choice, per language.
    NAMESPACE_NOT_SELECTED = "NamespaceNotSelected"
    POD_NOT_SELECTED = "PodNotSelected"
    POLICY_PAUSED = "PolicyPaused"
    LOWER_PRIORITY = "LowerPriority"
    SELECTED = "Selected"
    NO_MATCHING_POLICY = "NoMatchingPolicy"
    # Versions.
    VERSION_REQUESTED = "VersionRequested"
    VERSION_NOT_ALLOWED = "VersionNotAllowed"
    IMAGE_UNRESOLVED = "ImageUnresolved"  # no digest known for the library's image tag
    # Delivery modes a pod asks for (libinject.dev/mode).
    MODE_REQUESTED = "ModeRequested"
    MODE_NOT_ALLOWED = "ModeNotAllowed"
    # Containers.
    CONTAINER_INSTRUMENTED = "ContainerInstrumented"
    CONTAINER_NOT_NAMED = "ContainerNotNamed"
    CONTAINER_NAME_MISSING = "ContainerNameMissing"
    CONTAINER_EXCLUDED = "ContainerExcluded"  # named in the pod's exclude-containers annotation
    LANGUAGE_NOT_DETECTED = "LanguageNotDetected"  # its image's config names other languages
    LOAD_VARIABLE_FROM_SOURCE = "LoadVariableFromSource"
    LOAD_VARIABLE_CONFLICT = "LoadVariableConflict"
    OWN_TRACER = "OwnTracer"  # the container already loads a tracer of its own
    NO_CONTAINER_SELECTED = "NoContainerSelected"
    # Pod-level delivery.
    NAME_TAKEN = "NameTaken"
    RESOURCES_TOO_SMALL = "ResourcesTooSmall"
    # The policy's copy-container securityContext would fail the namespace's restricted profile.
    SECURITY_CONTEXT_NOT_RESTRICTED = "SecurityContextNotRestricted"
    INJECTED = "Injected"
    # The operator itself, before the engine could decide (the pod is admitted as it came).
    NOT_READY = "OperatorNotReady"
    NAMESPACE_UNKNOWN = "NamespaceUnknown"
    INTERNAL_ERROR = "InternalError"


@dataclass(frozen=True)
class Reason:
    """A decision and why: a stable code, a message for people, and what it is about."""

    code: Code
    message: str
    subject: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class PolicyVerdict:
    """How one policy fared for one language (explain mode records every candidate)."""

    policy: str
    priority: int
    reason: Reason


@dataclass(frozen=True)
class ContainerVerdict:
    container: str
    reason: Reason


@dataclass(frozen=True)
class LibraryChoice:
    """The library one language gets: from which policy, which version and image, how."""

    language: Language
    flavor: Flavor
    version: str
    image: str
    mode: Mode
    policy: str
    spec_hash: str = ""  # of the policy's spec: the record's specHash says which spec it was
    version_reason: Reason | None = None
    # The versions the pod asks for single containers (libinject.dev/<container>.<language>.
    # version) other than `version`, granted: each such version gets a copy of its own.
    container_versions: tuple[tuple[str, str], ...] = ()
    container_version_reasons: tuple[tuple[str, Reason], ...] = ()  # each request's, by container
    mode_reason: str | None = None  # why `auto` meant this mode; None for a mode the policy set
    mode_request: Reason | None = None  # the pod's libinject.dev/mode, granted or refused
    digest: str | None = None  # the image's digest, when it is pinned
    digest_note: str | None = None  # why the image is not pinned to a current digest
    env: tuple[EnvVar, ...] = ()  # the winning policy's own variables
    tracing: TracingSpec = field(default_factory=TracingSpec)  # and its tracing settings
    containers: tuple[ContainerVerdict, ...] = ()
    # Containers it went into without a detection to go by, and why there was none.
    not_detected: tuple[tuple[str, str], ...] = ()
    skipped: Reason | None = None

    @functools.cached_property
    def instrumented(self) -> tuple[str, ...]:
        return tuple(
            v.container for v in self.containers if v.reason.code is Code.CONTAINER_INSTRUMENTED
        )


@dataclass(frozen=True)
class LanguageDecision:
    language: Language
    choice: LibraryChoice | None
    candidates: tuple[PolicyVerdict, ...] = ()
    reason: Reason | None = None

    @property
    def injected(self) -> LibraryChoice | None:
        """The choice, if it was delivered into at least one container."""
        choice = self.choice
        ok = choice is not None and choice.skipped is None and bool(choice.instrumented)
        return choice if ok else None


@dataclass(frozen=True)
class Decision:
    """The whole outcome for one pod."""

    pod: str
    namespace: str
    reason: Reason
    languages: tuple[LanguageDecision, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    # Where the libraries' service name came from when no label gave it: the pod's workload.
    service_from: str | None = None

    @functools.cached_property
    def injected(self) -> tuple[LibraryChoice, ...]:
        return tuple(d.injected for d in self.languages if d.injected is not None)
