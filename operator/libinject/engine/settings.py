"""Operator settings the engine reads. One dataclass per concern, composed by `EngineSettings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from libinject.api.types import Mode
from libinject.engine.detection import Detected
from libinject.engine.digests import Pin


@dataclass(frozen=True)
class NamespaceSettings:
    """Which namespaces the engine may mutate."""

    mutate_unlabelled: bool = False
    """Inject into namespaces without the libinject.dev/inject label (never into 'disabled')."""

    operator_namespace: str = "libinject-system"
    """The operator's own namespace: never mutated."""

    excluded: frozenset[str] = frozenset(
        {"kube-system", "kube-public", "kube-node-lease", "libinject-csi"}
    )
    """Namespaces never mutated, whatever their labels (libinject-csi: the CSI plugin's own pods
    must start without the plugin)."""


@dataclass(frozen=True)
class ImageVolumeSupport:
    """Whether every node the pod may land on can mount the library image as an image volume,
    and why (libinject.engine.imagevolumes reads it from the versions the cluster reports)."""

    available: bool = False
    reason: str = "not known (the cluster's versions are not read here)"


@dataclass(frozen=True)
class LibrarySettings:
    """Where libraries come from and where they land in the app containers."""

    registry: str = "localhost:5000/libinject"
    """Registry prefix of the default library images: <registry>/<language>-<flavor>:<version>."""

    default_mode: Mode = Mode.INIT_CONTAINER
    """The mode a policy's `auto` resolves to when neither the CSI driver nor image volumes
    can serve the pod."""

    csi_registered: bool = False
    """The CSI driver's CSIDriver object exists: `auto` then resolves to csi (one copy per node
    instead of one per pod)."""

    image_volumes: ImageVolumeSupport = ImageVolumeSupport()
    """Whether the cluster mounts image volumes: without the CSI driver, `auto` then resolves to
    image-volume (the runtime's one copy per node, no copy per pod)."""

    auto_image_volumes: bool = True
    """Whether `auto` may choose image volumes at all (off: where a feature gate was turned off
    by hand, which no version shows)."""

    mount_root: str = "/opt/libinject"
    """Each library is mounted read-only at <mount_root>/<language> in app containers."""

    image_pull_policy: str = "IfNotPresent"
    """Pull policy of injected init containers and image volumes."""

    csi_driver: str = "csi.libinject.dev"
    """The CSI driver name used in csi mode."""

    digests: Mapping[str, Pin] | None = field(default=None, repr=False, compare=False)
    """Each policy image tag's digest as the operator last resolved it (libinject.engine.digests):
    pods get `<image>@<digest>`. None: images are not pinned (the operator's --pin-digests is
    off, or the offline CLI, which resolves nothing)."""

    detection: Mapping[str, Detected] | None = field(default=None, repr=False, compare=False)
    """What each app image's config says it runs (libinject.engine.detection), by the image
    reference a pod names, as the operator has fetched them so far; an image not in it is not
    known yet. None: the operator does not detect (its --detect-languages is off, or the offline
    CLI), and every policy's libraries go in as they name them."""

    csi_key: bytes = field(default=b"", repr=False)
    """The key CSI volume attributes are signed with (libinject.engine.signature), shared with
    the CSI plugin through a Secret; empty: volumes are written unsigned, and the plugin refuses
    them (the offline CLI has no key)."""


@dataclass(frozen=True)
class InitContainerSettings:
    """Resources below which a copy init container cannot do its job."""

    min_cpu_millis: int = 50
    """Smallest CPU limit (millicores) that can copy a library in reasonable time."""

    min_memory_bytes: int = 100 * 1024 * 1024
    """Smallest memory limit that copies a library without being OOM-killed."""


@dataclass(frozen=True)
class AgentSettings:
    """Where traces go when a policy's agent names no port."""

    ddtrace_port: int = 8126
    """The Datadog agent's trace port (ddtrace flavor)."""

    otlp_port: int = 4318
    """The OTLP/HTTP port of the collector (opentelemetry flavor)."""


@dataclass(frozen=True)
class EngineSettings:
    """Everything the engine needs besides the pod, its namespace and the policies."""

    namespaces: NamespaceSettings = field(default_factory=NamespaceSettings)
    libraries: LibrarySettings = field(default_factory=LibrarySettings)
    init_containers: InitContainerSettings = field(default_factory=InitContainerSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
