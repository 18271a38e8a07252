"""The InstrumentationPolicy API (libinject.dev/v1alpha1), as typed, frozen dataclasses.

Every description here becomes `kubectl explain` text; every constraint becomes both an OpenAPI
keyword in the CRD and a Python check (see `fields`). Edit this file, then `make crds`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, TypeGuard

from libinject.api.fields import Quantity, Rule, describe, matches

GROUP = "libinject.dev"
VERSION = "v1alpha1"
KIND = "InstrumentationPolicy"
PLURAL = "instrumentationpolicies"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A Secret or ConfigMap key: not ".", "..", nor starting with "..".
CONFIG_KEY = r"^([-_a-zA-Z0-9]|\.[-_a-zA-Z0-9])[-._a-zA-Z0-9]*$"
# A released library version: 1, 1.2, 1.2.3, optionally with a pre-release suffix: semver's
# (1.2.3-rc.1) or PEP 440's (0.66b1, OpenTelemetry Python's contrib releases).
VERSION_PATTERN = r"^[0-9]+(\.[0-9]+){0,2}(-?[A-Za-z][-0-9A-Za-z.]*|-[0-9][-0-9A-Za-z.]*)?$"
VERSION_MAX_LENGTH = 64  # within an image tag's 128 characters: every version is a valid tag
# What a pod may ask for: an exact version, or a prefix ending in ".*" (2.*, 2.9.*), or "*".
VERSION_GLOB_PATTERN = (
    r"^(\*|[0-9]+(\.[0-9]+){0,2}(\.\*)?"
    r"|[0-9]+(\.[0-9]+){0,2}(-?[A-Za-z][-0-9A-Za-z.]*|-[0-9][-0-9A-Za-z.]*))$"
)
IMAGE_PATTERN = r"^[a-z0-9][^\s@]*(@sha256:[a-f0-9]{64})?$"
URL_PATTERN = r"^(http|https|unix)://[^\s]+$"


def is_version(value: object) -> TypeGuard[str]:
    """The one version grammar: what spec.libraries[].version accepts (its pattern and length),
    for every other place that takes a library version, such as a pod's request. Whatever
    passes is a valid image tag."""
    return (
        isinstance(value, str)
        and len(value) <= VERSION_MAX_LENGTH
        and matches(VERSION_PATTERN, value)
    )


class LoadVariableName(StrEnum):
    """Variables libinject sets to make a runtime load its library (the engine's load rules name
    only these). A policy's `env` cannot set them: their values are built per container
    (prepended or appended to the user's own value)."""

    PYTHONPATH = "PYTHONPATH"
    JAVA_TOOL_OPTIONS = "JAVA_TOOL_OPTIONS"
    NODE_OPTIONS = "NODE_OPTIONS"
    RUBYOPT = "RUBYOPT"
    PHP_INI_SCAN_DIR = "PHP_INI_SCAN_DIR"
    CORECLR_ENABLE_PROFILING = "CORECLR_ENABLE_PROFILING"
    CORECLR_PROFILER = "CORECLR_PROFILER"
    CORECLR_PROFILER_PATH_64 = "CORECLR_PROFILER_PATH_64"
    CORECLR_PROFILER_PATH_ARM64 = "CORECLR_PROFILER_PATH_ARM64"
    DOTNET_STARTUP_HOOKS = "DOTNET_STARTUP_HOOKS"
    DOTNET_ADDITIONAL_DEPS = "DOTNET_ADDITIONAL_DEPS"
    DOTNET_SHARED_STORE = "DOTNET_SHARED_STORE"
    DD_DOTNET_TRACER_HOME = "DD_DOTNET_TRACER_HOME"
    OTEL_DOTNET_AUTO_HOME = "OTEL_DOTNET_AUTO_HOME"


LOAD_VARIABLES = tuple(LoadVariableName)


class Language(StrEnum):
    PYTHON = "python"
    JAVA = "java"
    NODEJS = "nodejs"
    DOTNET = "dotnet"
    RUBY = "ruby"
    PHP = "php"


class Flavor(StrEnum):
    DDTRACE = "ddtrace"
    OPENTELEMETRY = "opentelemetry"


class Mode(StrEnum):
    AUTO = "auto"
    INIT_CONTAINER = "init-container"
    CSI = "csi"
    IMAGE_VOLUME = "image-volume"


class AgentMode(StrEnum):
    HOST_IP = "hostIP"
    SERVICE = "service"
    URL = "url"


class Propagator(StrEnum):
    """A trace context format, by its OpenTelemetry name (OTEL_PROPAGATORS)."""

    TRACECONTEXT = "tracecontext"
    BAGGAGE = "baggage"
    B3 = "b3"
    B3MULTI = "b3multi"
    DATADOG = "datadog"


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


def _values_fit_operator(req: LabelSelectorRequirement) -> bool:
    wants_values = req.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
    return bool(req.values) == wants_values


@dataclass(frozen=True)
class LabelSelectorRequirement:
    """One condition on labels: a key, an operator and (for In and NotIn) values."""

    key: str = field(
        metadata=describe("The label key the condition tests.", pattern=LABEL_KEY, max_length=317)
    )
    operator: SelectorOperator = field(
        metadata=describe(
            "In: the label's value is one of values. NotIn: it is not (or the label is absent). "
            "Exists / DoesNotExist: the key is present / absent, whatever its value."
        )
    )
    values: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "The values for In and NotIn; must be empty for Exists and DoesNotExist.",
            item_pattern=LABEL_VALUE,
            max_items=64,
            list_type="set",
        ),
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
            " : (!has(self.values) || size(self.values) == 0)",
            message="values must be non-empty for In and NotIn, and empty for Exists and "
            "DoesNotExist",
            check=_values_fit_operator,
            field_path=".values",
        ),
    )


_MATCH_LABELS = describe(
    "Labels that must all be present with exactly these values.",
    value_pattern=LABEL_VALUE,
    value_max_length=63,
    max_properties=64,
)
_MATCH_EXPRESSIONS = describe(
    "Conditions that must all hold. Combined with matchLabels by AND.", max_items=64
)


@dataclass(frozen=True)
class LabelSelector:
    """Selects objects by their labels. Empty: selects every object."""

    match_labels: Mapping[str, str] = field(default_factory=dict, metadata=_MATCH_LABELS)
    match_expressions: tuple[LabelSelectorRequirement, ...] = field(
        default=(), metadata=_MATCH_EXPRESSIONS
    )


def _names_or_labels(sel: NamespaceSelector) -> bool:
    return not (sel.match_names and (sel.match_labels or sel.match_expressions))


@dataclass(frozen=True)
class NamespaceSelector:
    """Which namespaces the policy applies to: by name, or by labels, not both. Empty: every
    namespace where injection is enabled (label libinject.dev/inject=enabled)."""

    match_names: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "Namespaces selected by name.",
            item_pattern=DNS_LABEL,
            max_items=256,
            list_type="set",
        ),
    )
    match_labels: Mapping[str, str] = field(default_factory=dict, metadata=_MATCH_LABELS)
    match_expressions: tuple[LabelSelectorRequirement, ...] = field(
        default=(), metadata=_MATCH_EXPRESSIONS
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!(has(self.matchNames) && size(self.matchNames) > 0 && "
            "((has(self.matchLabels) && size(self.matchLabels) > 0) || "
            "(has(self.matchExpressions) && size(self.matchExpressions) > 0)))",
            message="matchNames cannot be combined with matchLabels or matchExpressions",
            check=_names_or_labels,
        ),
    )


def _pinned_image_has_no_choices(lib: LibrarySpec) -> bool:
    return lib.image is None or not lib.allowed_versions


@dataclass(frozen=True)
class LibrarySpec:
    """A tracing library to inject into pods of one language."""

    language: Language = field(metadata=describe("The runtime this library instruments."))
    version: str = field(
        metadata=describe(
            "The library version injected by default (1, 1.2, 1.2.3 or 1.2.3-rc.1). It also "
            "picks the default image's tag.",
            pattern=VERSION_PATTERN,
            max_length=VERSION_MAX_LENGTH,
        )
    )
    flavor: Flavor = field(
        default=Flavor.DDTRACE,
        metadata=describe(
            "Which tracer: ddtrace (Datadog, sends to a Datadog agent) or opentelemetry "
            "(OpenTelemetry auto-instrumentation, sends OTLP)."
        ),
    )
    image: str | None = field(
        default=None,
        metadata=describe(
            "A full image reference that replaces the default "
            "<library registry>/<language>-<flavor>:<version>. The image must hold the library "
            "under /libinject and a static /bin/busybox for the copy step.",
            pattern=IMAGE_PATTERN,
            max_length=512,
        ),
    )
    allowed_versions: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "Versions a pod may request with the annotation libinject.dev/<language>.version: "
            "exact versions, prefixes such as 2.* or 2.9.*, or * for any. Empty: pods cannot "
            "choose.",
            item_pattern=VERSION_GLOB_PATTERN,
            max_items=32,
            list_type="set",
        ),
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.image) || !has(self.allowedVersions) || size(self.allowedVersions) == 0",
            message="allowedVersions cannot be used with image: a pinned image has one version",
            check=_pinned_image_has_no_choices,
            field_path=".allowedVersions",
        ),
    )


@dataclass(frozen=True)
class ResourceRequirements:
    """Compute resources of the injected init containers."""

    requests: Mapping[str, Quantity] = field(
        default_factory=dict,
        metadata=describe("Minimum resources, by name (cpu, memory).", max_properties=8),
    )
    limits: Mapping[str, Quantity] = field(
        default_factory=dict,
        metadata=describe("Maximum resources, by name (cpu, memory).", max_properties=8),
    )


# A relative path with no ".." segment (the API server's check of a seccomp localhostProfile).
_SEGMENT = r"\.\.[^/\s]+|\.?[^/.\s][^/\s]*"
LOCAL_DESCENDING_PATH = rf"^(\.|{_SEGMENT})(/(\.?|{_SEGMENT}))*$"


class SeccompType(StrEnum):
    RUNTIME_DEFAULT = "RuntimeDefault"
    LOCALHOST = "Localhost"


def _profile_fits_type(profile: SeccompProfile) -> bool:
    return (profile.localhost_profile is not None) == (profile.type is SeccompType.LOCALHOST)


@dataclass(frozen=True)
class SeccompProfile:
    """A seccomp profile (Unconfined is not offered: Pod Security's baseline forbids it)."""

    type: SeccompType = field(metadata=describe("RuntimeDefault or Localhost."))
    localhost_profile: str | None = field(
        default=None,
        metadata=describe(
            "The profile's path under the kubelet's seccomp directory (Localhost only): "
            "relative, without a .. segment, as the API server requires.",
            pattern=LOCAL_DESCENDING_PATH,
            max_length=4096,
        ),
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.localhostProfile) == (self.type == 'Localhost')",
            message="localhostProfile is required for Localhost and allowed for it only",
            check=_profile_fits_type,
            field_path=".localhostProfile",
        ),
    )


@dataclass(frozen=True)
class Capabilities:
    """Capabilities to drop (the copy step needs none; none can be added)."""

    drop: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "Capabilities removed, such as ALL.",
            item_pattern=r"^[A-Z][A-Z_]*$",
            max_items=64,
            list_type="set",
        ),
    )


def _non_root_is_not_uid_zero(context: CopySecurityContext) -> bool:
    return not (context.run_as_non_root and context.run_as_user == 0)


@dataclass(frozen=True)
class CopySecurityContext:
    """The copy containers' securityContext, applied as given in place of libinject's own (for
    platforms that assign user ids, such as OpenShift, or admission policies that forbid a field
    libinject sets). In a namespace that enforces Pod Security restricted, a library whose
    context, with the pod's, would fail that profile is skipped with the reason, never a pod the
    API server refuses."""

    run_as_user: int | None = field(
        default=None,
        metadata=describe(
            "The user id. Library images declare no user: with runAsNonRoot and no user id "
            "here or on the pod, only a platform that assigns one lets the container start.",
            minimum=0,
            maximum=2147483647,
        ),
    )
    run_as_group: int | None = field(
        default=None, metadata=describe("The group id.", minimum=0, maximum=2147483647)
    )
    run_as_non_root: bool | None = field(
        default=None, metadata=describe("The kubelet refuses to start it as uid 0.")
    )
    allow_privilege_escalation: bool | None = field(
        default=None, metadata=describe("Whether a process may gain privileges (set false).")
    )
    read_only_root_filesystem: bool | None = field(
        default=None, metadata=describe("Whether the image's file system is read-only.")
    )
    capabilities: Capabilities | None = field(
        default=None, metadata=describe("Capabilities to drop.")
    )
    seccomp_profile: SeccompProfile | None = field(
        default=None, metadata=describe("The seccomp profile.")
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!(has(self.runAsNonRoot) && self.runAsNonRoot && has(self.runAsUser) && "
            "self.runAsUser == 0)",
            message="runAsNonRoot cannot be true with runAsUser 0: the kubelet would refuse to "
            "start the container",
            check=_non_root_is_not_uid_zero,
            field_path=".runAsUser",
        ),
    )


def _resources_need_init_container(spec: InjectionSpec) -> bool:
    return spec.resources is None or spec.mode in (Mode.AUTO, Mode.INIT_CONTAINER)


def _modes_are_concrete(spec: InjectionSpec) -> bool:
    return Mode.AUTO not in spec.allowed_modes


def _context_needs_init_container(spec: InjectionSpec) -> bool:
    return spec.security_context is None or spec.mode in (Mode.AUTO, Mode.INIT_CONTAINER)


@dataclass(frozen=True)
class InjectionSpec:
    """How the library reaches the pod."""

    mode: Mode = field(
        default=Mode.AUTO,
        metadata=describe(
            "init-container: an init container copies the library into an emptyDir. csi: a "
            "read-only volume served from the node's cache by the libinject CSI driver. "
            "image-volume: the library image mounted read-only (Kubernetes 1.33+). auto: csi "
            "when the libinject CSI driver is registered (its CSIDriver object exists), else "
            "image-volume when the API server is v1.35+ and every node's kubelet is v1.35+ on "
            "containerd 2.2+ or CRI-O 1.33+, else the operator's default mode; each pod's "
            "libinject.dev/injected record says which and why (modeReason)."
        ),
    )
    resources: ResourceRequirements | None = field(
        default=None,
        metadata=describe(
            "Resources of the copy init containers. Default: as much as the pod already "
            "reserves (the biggest init container, or the sum of the app containers and native "
            "sidecars), so the pod's footprint does not grow."
        ),
    )
    size_limit: Quantity = field(
        # Above the biggest library image we build (ddtrace for 24 Python targets: 614 MiB in
        # bench/results/bundle-size.json): past its limit the kubelet evicts the pod.
        default=Quantity("1Gi"),
        metadata=describe(
            "Size limit of each library's emptyDir (init-container mode). It must hold the whole "
            "library image: past it the kubelet evicts the pod."
        ),
    )

    allowed_modes: tuple[Mode, ...] = field(
        default=(),
        metadata=describe(
            "Modes a pod may ask for with the annotation libinject.dev/mode (init-container, "
            "csi, image-volume), in place of mode; one the cluster cannot deliver is refused "
            "and recorded. Empty: pods cannot choose.",
            max_items=3,
            list_type="set",
        ),
    )
    security_context: CopySecurityContext | None = field(
        default=None,
        metadata=describe(
            "The copy containers' securityContext, in place of libinject's own (which drops "
            "every capability, forbids privilege escalation, mounts the image read-only, and in "
            "restricted namespaces adds runAsNonRoot, uid 65532 and RuntimeDefault seccomp)."
        ),
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.resources) || self.mode in ['auto', 'init-container']",
            message="resources apply only to the init-container and auto modes",
            check=_resources_need_init_container,
            field_path=".resources",
        ),
        Rule(
            cel="!has(self.allowedModes) || !('auto' in self.allowedModes)",
            message="allowedModes names modes a pod may ask for: auto is not one",
            check=_modes_are_concrete,
            field_path=".allowedModes",
        ),
        Rule(
            cel="!has(self.securityContext) || self.mode in ['auto', 'init-container']",
            message="securityContext applies only to the init-container and auto modes (the "
            "other modes add no container)",
            check=_context_needs_init_container,
            field_path=".securityContext",
        ),
    )


class ResourceName(StrEnum):
    """A container resource an env variable can read (its own container's)."""

    LIMITS_CPU = "limits.cpu"
    LIMITS_MEMORY = "limits.memory"
    LIMITS_EPHEMERAL_STORAGE = "limits.ephemeral-storage"
    REQUESTS_CPU = "requests.cpu"
    REQUESTS_MEMORY = "requests.memory"
    REQUESTS_EPHEMERAL_STORAGE = "requests.ephemeral-storage"


# The divisors the API server accepts for each kind of resource: any other refuses the pod.
CPU_DIVISORS = ("1m", "1")
BYTE_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")


def _divisor_fits_resource(ref: ResourceFieldRef) -> bool:
    if ref.divisor is None:
        return True
    cpu = ref.resource in (ResourceName.LIMITS_CPU, ResourceName.REQUESTS_CPU)
    return ref.divisor in (CPU_DIVISORS if cpu else BYTE_DIVISORS)


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


@dataclass(frozen=True)
class ResourceFieldRef:
    """A resource of the instrumented container itself, as a number."""

    resource: ResourceName = field(metadata=describe("The resource to read."))
    divisor: Quantity | None = field(
        default=None,
        metadata=describe(
            "The unit of the value: 1m or 1 for cpu; 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, "
            "1Ti, 1Pi or 1Ei for memory and ephemeral-storage. Default 1.",
            max_length=3,
        ),
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.divisor) || (self.resource.endsWith('.cpu') ? "
            f"string(self.divisor) in {_cel_list(CPU_DIVISORS)} : "
            f"string(self.divisor) in {_cel_list(BYTE_DIVISORS)})",
            message="divisor must be 1m or 1 for cpu, and one of "
            + ", ".join(BYTE_DIVISORS)
            + " for memory and ephemeral-storage",
            check=_divisor_fits_resource,
            field_path=".divisor",
        ),
    )


# What the kubelet can put in a variable from the pod itself. A label or annotation is named by
# its key (a qualified name: an optional DNS-subdomain prefix, at most 253 characters, then a
# name of at most 63), checked here as the API server would: a pod it refuses is a pod blocked.
_QUALIFIED_NAME = (
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
POD_FIELD_PATH = (
    r"^(metadata\.(name|namespace|uid)|spec\.(nodeName|serviceAccountName)"
    r"|status\.(hostIP|hostIPs|podIP|podIPs)"
    rf"|metadata\.(labels|annotations)\['{_QUALIFIED_NAME}'\])$"
)
# Within the pattern above, a key's prefix longer than 253 characters is the one thing left.
_LONG_PREFIX = r"\['[^/']{254,}/"


def _prefix_fits(ref: FieldRef) -> bool:
    return re.search(_LONG_PREFIX, ref.field_path) is None


@dataclass(frozen=True)
class FieldRef:
    """A field of the pod, as the downward API gives it."""

    field_path: str = field(
        metadata=describe(
            "metadata.name, metadata.namespace, metadata.uid, metadata.labels['<key>'], "
            "metadata.annotations['<key>'], spec.nodeName, spec.serviceAccountName, "
            "status.hostIP, status.hostIPs, status.podIP or status.podIPs.",
            pattern=POD_FIELD_PATH,
            max_length=341,
        )
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel=f"!self.fieldPath.matches({_LONG_PREFIX!r})",
            message="a label or annotation key's prefix may be at most 253 characters",
            check=_prefix_fits,
            field_path=".fieldPath",
        ),
    )


@dataclass(frozen=True)
class KeyRef:
    """One key of a Secret or ConfigMap in the pod's namespace. Where the object or the key is
    missing, the variable is left unset: a policy never stops a pod from starting."""

    name: str = field(
        metadata=describe("The object's name.", pattern=DNS_SUBDOMAIN, max_length=253)
    )
    key: str = field(metadata=describe("The key.", pattern=CONFIG_KEY, max_length=253))


def _one_source(source: EnvVarSource) -> bool:
    refs = (source.secret_key_ref, source.config_map_key_ref, source.field_ref)
    return sum(ref is not None for ref in (*refs, source.resource_field_ref)) == 1


@dataclass(frozen=True)
class EnvVarSource:
    """Where a variable's value comes from: exactly one of the four."""

    secret_key_ref: KeyRef | None = field(
        default=None, metadata=describe("A key of a Secret in the pod's namespace.")
    )
    config_map_key_ref: KeyRef | None = field(
        default=None, metadata=describe("A key of a ConfigMap in the pod's namespace.")
    )
    field_ref: FieldRef | None = field(default=None, metadata=describe("A field of the pod."))
    resource_field_ref: ResourceFieldRef | None = field(
        default=None, metadata=describe("A resource of the instrumented container.")
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="(has(self.secretKeyRef) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) + "
            "(has(self.fieldRef) ? 1 : 0) + (has(self.resourceFieldRef) ? 1 : 0) == 1",
            message="exactly one of secretKeyRef, configMapKeyRef, fieldRef and "
            "resourceFieldRef is required",
            check=_one_source,
        ),
    )


def _value_or_source(var: EnvVar) -> bool:
    return not var.value or var.value_from is None


@dataclass(frozen=True)
class EnvVar:
    """An environment variable added to instrumented containers (never overriding theirs)."""

    name: str = field(metadata=describe("Variable name.", pattern=ENV_NAME, max_length=256))
    value: str | None = field(
        default=None, metadata=describe("Variable value. Default empty.", max_length=4096)
    )
    value_from: EnvVarSource | None = field(
        default=None,
        metadata=describe(
            "Where the value comes from instead (a Secret, a ConfigMap, the pod, the container's "
            "resources), as in a container's env. Not with value."
        ),
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            # An empty value is no value, as Kubernetes has it (and as this CRD once defaulted).
            cel="!(has(self.value) && self.value != '' && has(self.valueFrom))",
            message="value and valueFrom cannot both be set",
            check=_value_or_source,
        ),
    )


@dataclass(frozen=True)
class ServiceRef:
    """A Service in the cluster that receives traces."""

    name: str = field(metadata=describe("Service name.", pattern=DNS_LABEL, max_length=63))
    namespace: str = field(
        metadata=describe("Service namespace.", pattern=DNS_LABEL, max_length=63)
    )
    port: int | None = field(
        default=None,
        metadata=describe(
            "Service port. Default: the operator's agent port for the flavor (8126 for ddtrace, "
            "4318 for opentelemetry, unless configured otherwise).",
            minimum=1,
            maximum=65535,
        ),
    )


def _agent_fields_fit_mode(agent: AgentSpec) -> bool:
    return (agent.service is not None) == (agent.mode is AgentMode.SERVICE) and (
        agent.url is not None
    ) == (agent.mode is AgentMode.URL)


def _port_only_for_host_ip(agent: AgentSpec) -> bool:
    return agent.port is None or agent.mode is AgentMode.HOST_IP


@dataclass(frozen=True)
class AgentSpec:
    """Where instrumented apps send traces: the agent on their node, a Service, or a URL."""

    mode: AgentMode = field(
        default=AgentMode.HOST_IP,
        metadata=describe(
            "hostIP: the agent on the pod's node (status.hostIP). service: the Service named in "
            "service. url: the URL in url."
        ),
    )
    port: int | None = field(
        default=None,
        metadata=describe(
            "Agent port on the node (hostIP mode). Default: the operator's agent port for the "
            "flavor (8126 for ddtrace, 4318 for opentelemetry, unless configured otherwise).",
            minimum=1,
            maximum=65535,
        ),
    )
    service: ServiceRef | None = field(
        default=None, metadata=describe("The Service (service mode only).")
    )
    url: str | None = field(
        default=None,
        metadata=describe(
            "The full agent or collector URL (url mode only).",
            pattern=URL_PATTERN,
            max_length=2048,
        ),
    )

    # The API server also checks the CRD's `default: {}` against these rules, before the nested
    # default of `mode` applies: an absent mode must read as hostIP, or the CRD is refused.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.service) == (has(self.mode) && self.mode == 'service') && "
            "has(self.url) == (has(self.mode) && self.mode == 'url')",
            message="service is required in service mode and url in url mode, and neither is "
            "allowed in any other mode",
            check=_agent_fields_fit_mode,
        ),
        Rule(
            cel="!has(self.port) || !has(self.mode) || self.mode == 'hostIP'",
            message="port applies only to hostIP mode",
            check=_port_only_for_host_ip,
            field_path=".port",
        ),
    )


@dataclass(frozen=True)
class TracingSpec:
    """Tracer settings written in each library's own variables (ddtrace's or OpenTelemetry's), so
    that a policy means the same whichever flavor it names."""

    sample_rate: float | None = field(
        default=None,
        metadata=describe(
            "The share of new traces kept, from 0 to 1; a trace that arrives with a decision "
            "keeps it. ddtrace: DD_TRACE_SAMPLING_RULES. opentelemetry: OTEL_TRACES_SAMPLER="
            "parentbased_traceidratio and OTEL_TRACES_SAMPLER_ARG. Default: the tracer's own.",
            minimum=0,
            maximum=1,
        ),
    )
    propagators: tuple[Propagator, ...] = field(
        default=(),
        metadata=describe(
            "Trace context formats read from incoming requests and written to outgoing ones, "
            "in order: tracecontext (W3C traceparent), baggage (W3C baggage), b3 (one b3 "
            "header), b3multi (the X-B3-* headers), datadog (x-datadog-*, ddtrace only). "
            "ddtrace: DD_TRACE_PROPAGATION_STYLE. opentelemetry: OTEL_PROPAGATORS. Default: the "
            "tracer's own.",
            max_items=5,
            list_type="set",
        ),
    )


# The variables `tracing` writes: a policy's env may not set them too (one of the two would be
# silently ignored).
SAMPLING_VARIABLES = (
    "DD_TRACE_SAMPLING_RULES",
    "DD_TRACE_SAMPLE_RATE",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)
PROPAGATION_VARIABLES = (
    "DD_TRACE_PROPAGATION_STYLE",
    "DD_TRACE_PROPAGATION_STYLE_INJECT",
    "DD_TRACE_PROPAGATION_STYLE_EXTRACT",
    "OTEL_PROPAGATORS",
)


def _env_leaves_tracing_variables(spec: PolicySpec) -> bool:
    taken = (SAMPLING_VARIABLES if spec.tracing.sample_rate is not None else ()) + (
        PROPAGATION_VARIABLES if spec.tracing.propagators else ()
    )
    return not any(var.name in taken for var in spec.env)


def _datadog_format_needs_ddtrace(spec: PolicySpec) -> bool:
    return Propagator.DATADOG not in spec.tracing.propagators or all(
        library.flavor is Flavor.DDTRACE for library in spec.libraries
    )


def _env_leaves_load_variables(spec: PolicySpec) -> bool:
    return not any(var.name in LOAD_VARIABLES for var in spec.env)


@dataclass(frozen=True)
class PolicySpec:
    """Which pods get which tracing libraries, and how."""

    libraries: tuple[LibrarySpec, ...] = field(
        metadata=describe(
            "The libraries to inject, at most one per language.",
            min_items=1,
            max_items=6,
            list_type="map",
            list_map_keys=("language",),
        )
    )
    namespace_selector: NamespaceSelector = field(
        default_factory=NamespaceSelector,
        metadata=describe(
            "Namespaces the policy applies to (by name or by labels). Only namespaces where "
            "injection is enabled are ever considered."
        ),
    )
    pod_selector: LabelSelector = field(
        default_factory=LabelSelector,
        metadata=describe("Pods the policy applies to, by labels. Empty: every pod."),
    )
    container_names: tuple[str, ...] = field(
        default=(),
        metadata=describe(
            "Only these containers are instrumented. Empty: every app container (native "
            "sidecars and init containers are instrumented only when named here).",
            item_pattern=DNS_LABEL,
            max_items=64,
            list_type="set",
        ),
    )
    injection: InjectionSpec = field(
        default_factory=InjectionSpec, metadata=describe("How the library reaches the pod.")
    )
    env: tuple[EnvVar, ...] = field(
        default=(),
        metadata=describe(
            "Extra environment for instrumented containers, for example tracer settings. A "
            "variable the container already sets is left as the container has it.",
            max_items=64,
            list_type="map",
            list_map_keys=("name",),
        ),
    )
    tracing: TracingSpec = field(
        default_factory=TracingSpec,
        metadata=describe(
            "Sampling and propagation, written in each library's own variables (see env for "
            "anything else)."
        ),
    )
    agent: AgentSpec = field(
        default_factory=AgentSpec,
        metadata=describe("Where instrumented apps send traces."),
    )
    priority: int = field(
        default=0,
        metadata=describe(
            "When several policies match a pod for the same language, the highest priority "
            "wins; equal priorities are broken by name (alphabetical first).",
            minimum=-1000,
            maximum=1000,
        ),
    )
    paused: bool = field(
        default=False,
        metadata=describe("A paused policy injects nothing; pods already injected keep it."),
    )
    detect_languages: bool = field(
        default=True,
        metadata=describe(
            "Where the operator detects languages (its --detect-languages), a container whose "
            "image's config names other languages than a library's gets no copy of it (a JVM "
            "pod no Python bundle); a config that names none, or one not fetched yet, changes "
            "nothing, and the pod's record says so (notDetected). False: every container the "
            "policy selects gets every library."
        ),
    )
    rollout_on_change: bool = field(
        default=False,
        metadata=describe(
            "When true, every change of this spec rolls out the Deployments, StatefulSets and "
            "DaemonSets whose pods the policy selects (in namespaces where injection is enabled): "
            "the operator sets the annotation libinject.dev/policy.<name> on their pod template "
            "to a hash of the spec. Needs the RBAC of manifests/components/rollout. Default false: "
            "running pods keep what they have until they are next re-created."
        ),
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel=f"!has(self.env) || self.env.all(e, !(e.name in {_cel_list(LOAD_VARIABLES)}))",
            message="env cannot set a variable that loads a library ("
            + ", ".join(LOAD_VARIABLES)
            + "): libinject builds those per container",
            check=_env_leaves_load_variables,
            field_path=".env",
        ),
        Rule(
            cel="!has(self.env) || !has(self.tracing) || ((!has(self.tracing.sampleRate) || "
            f"self.env.all(e, !(e.name in {_cel_list(SAMPLING_VARIABLES)}))) && "
            "(!has(self.tracing.propagators) || size(self.tracing.propagators) == 0 || "
            f"self.env.all(e, !(e.name in {_cel_list(PROPAGATION_VARIABLES)}))))",
            message="env cannot set a variable that tracing sets ("
            + ", ".join(SAMPLING_VARIABLES)
            + " with sampleRate; "
            + ", ".join(PROPAGATION_VARIABLES)
            + " with propagators)",
            check=_env_leaves_tracing_variables,
            field_path=".env",
        ),
        Rule(
            cel="!has(self.tracing) || !has(self.tracing.propagators) || "
            "!('datadog' in self.tracing.propagators) || "
            "self.libraries.all(l, !has(l.flavor) || l.flavor == 'ddtrace')",
            message="the datadog propagator needs every library to be ddtrace: OpenTelemetry "
            "libraries do not read or write it",
            check=_datadog_format_needs_ddtrace,
            field_path=".tracing",
        ),
    )


@dataclass(frozen=True)
class Condition:
    """The state of one aspect of the policy (the standard Kubernetes condition shape)."""

    type: str = field(metadata=describe("Condition type, such as Ready.", max_length=316))
    status: ConditionStatus = field(metadata=describe("True, False or Unknown."))
    reason: str = field(
        metadata=describe("A CamelCase code for the condition's last change.", max_length=1024)
    )
    message: str = field(
        default="", metadata=describe("What happened, for people.", max_length=32768)
    )
    last_transition_time: str | None = field(
        default=None,
        metadata=describe("When the status last changed.", date_time=True),
    )
    observed_generation: int | None = field(
        default=None,
        metadata=describe("The spec generation the condition was set from.", minimum=0),
    )


@dataclass(frozen=True)
class PodCounts:
    """The pods the policy wins a language of now (running or pending), by state."""

    total: int = field(default=0, metadata=describe("Every pod the policy covers.", minimum=0))
    instrumented: int = field(
        default=0,
        metadata=describe("Pods injected by this policy at the spec it has now.", minimum=0),
    )
    outdated: int = field(
        default=0,
        metadata=describe(
            "Pods injected at an older spec of the policy, or admitted before it won them "
            "(created before it, or while the webhook was not called): a restart brings them "
            "the current spec.",
            minimum=0,
        ),
    )
    skipped: Mapping[str, int] = field(
        default_factory=dict,
        metadata=describe(
            "Pods the webhook skipped, by the reason on them (libinject.dev/injection-skipped); "
            "the 20 most frequent reasons, the others under Other.",
        ),
    )


@dataclass(frozen=True)
class PolicyStatus:
    """What the operator observed about the policy."""

    observed_generation: int | None = field(
        default=None,
        metadata=describe("The spec generation the status reflects.", minimum=0),
    )
    matched_namespaces: int | None = field(
        default=None,
        metadata=describe("How many injection-enabled namespaces the policy selects.", minimum=0),
    )
    # A printer column over spec.libraries[*].language shows only the first language (the API
    # server prints one value per column), so the operator writes the whole list here.
    languages: str | None = field(
        default=None,
        metadata=describe(
            "The languages the policy injects, comma-separated: the Languages column of "
            "`kubectl get instrumentationpolicies`.",
            max_length=128,
        ),
    )
    pods: PodCounts | None = field(
        default=None, metadata=describe("The pods the policy covers, by state.")
    )
    instrumented: str | None = field(
        default=None,
        metadata=describe(
            "Instrumented pods of all it covers, as instrumented/total: the Instrumented column "
            "of `kubectl get instrumentationpolicies`.",
            max_length=32,
        ),
    )
    conditions: tuple[Condition, ...] = field(
        default=(),
        metadata=describe(
            "Ready is True when the policy is valid and in use; its reason and message say why "
            "not otherwise.",
            max_items=16,
            list_type="map",
            list_map_keys=("type",),
        ),
    )


@dataclass(frozen=True)
class InstrumentationPolicy:
    """A parsed policy: its name, generation and spec (status is the operator's, not read)."""

    name: str
    spec: PolicySpec
    generation: int = 0
    spec_hash: str = ""  # of the parsed spec (api.parse.spec_hash): a pod's record names it
