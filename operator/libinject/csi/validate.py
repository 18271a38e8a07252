"""What the CSI node plugin accepts from the kubelet (pure: strings in, a value or a refusal out).

Every volume id, target path and volume context passes through here before the plugin touches
the file system or a registry:
  - a volume id becomes a file name (`<root>/volumes/<id>.json`): a conservative charset, bounded
    length, never `.` or `..`, no `/`;
  - a target path is where a bind mount goes: absolute, already normalized, no `..` component,
    and strictly under one of the allowed roots (the kubelet's pods directory by default);
  - the volume context must be one our webhook wrote: exactly `image`, `language` and
    `signature` (besides the kubelet's pod information), the signature valid for the pod's
    namespace as the kubelet passes it (libinject.engine.signature), and the image a well-formed
    reference in one of the allowed repositories (`host[:port]/path/`, matched by whole path
    segments, never a whole registry host).
Each refusal says which field and why, carries the gRPC status code the plugin answers with and
a coarse reason (the label of libinject_csi_refused_publishes_total).
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from libinject.engine import references, signature

KUBELET_PODS = "/var/lib/kubelet/pods"
MAX_VOLUME_ID = 128
MAX_PATH = 4096
# What the kubelet adds to an inline volume's attributes (podInfoOnMount).
KUBELET_ATTRIBUTE_PREFIX = "csi.storage.k8s.io/"
POD_NAMESPACE = KUBELET_ATTRIBUTE_PREFIX + "pod.namespace"
ATTRIBUTES = frozenset({"image", "language", signature.ATTRIBUTE})

_VOLUME_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")  # a language
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # a namespace's name


class Code(enum.Enum):
    """The gRPC status a refusal maps to (named as grpc.StatusCode names them)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    ALREADY_EXISTS = "ALREADY_EXISTS"


class Reason(enum.Enum):
    """Why a publish was refused, coarsely (the metric's label; the message says more)."""

    INVALID = "invalid"  # a malformed id, path, capability or attribute
    WRITABLE = "writable"  # asked for a writable volume, which is not served
    UNSIGNED = "unsigned"  # no signature, or no pod namespace to check it against
    SIGNATURE = "signature"  # a signature that is not ours for this namespace and library
    REPOSITORY = "repository"  # an image outside the allowed repositories
    TARGET_IN_USE = "target_in_use"  # another volume is published (or mounted) at the target
    VOLUME_IN_USE = "volume_in_use"  # the volume id is published with another target or image


class RefusedError(ValueError):
    """A request the plugin will not act on: `field` is what was wrong, the message why."""

    def __init__(
        self,
        field: str,
        message: str,
        code: Code = Code.INVALID_ARGUMENT,
        reason: Reason = Reason.INVALID,
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Rules:
    """The node's configuration of what is allowed."""

    allowed_repositories: tuple[str, ...]
    target_roots: tuple[str, ...] = (KUBELET_PODS,)

    def __post_init__(self) -> None:
        prefixes = tuple(repository_prefix(entry) for entry in self.allowed_repositories)
        object.__setattr__(self, "allowed_repositories", prefixes)  # without trailing slashes
        for root in self.target_roots:
            if not root.startswith("/") or posixpath.normpath(root) != root or root == "/":
                raise ValueError(f"target root {root!r}: must be an absolute normalized path")


def repository_prefix(entry: str) -> str:
    """Checks an allowed-repository entry (`host[:port]/path`, a trailing `/` optional); returns
    it without the trailing `/`. A bare host is refused: it would admit every repository of the
    registry, other teams' images included."""
    entry = entry.removesuffix("/")
    try:
        references.check_prefix(entry)
    except references.ReferenceError as error:
        raise ValueError(f"repository {error}") from None
    if "/" not in entry:
        raise ValueError(f"repository {entry!r}: expected host[:port]/path (not a whole registry)")
    return entry


def volume_id(value: str) -> str:
    if not value:
        raise RefusedError("volume_id", "missing")
    if len(value) > MAX_VOLUME_ID:
        raise RefusedError("volume_id", f"longer than {MAX_VOLUME_ID} characters")
    if not _VOLUME_ID.fullmatch(value) or value in {".", ".."}:
        raise RefusedError(
            "volume_id", f"{value[:64]!r}: only letters, digits, '.', '_', '-' (not first)"
        )
    return value


def target_path(value: str, roots: Sequence[str]) -> str:
    """An absolute, normalized path strictly under one of `roots`."""
    if not value:
        raise RefusedError("target_path", "missing")
    if "\0" in value or len(value) > MAX_PATH:
        raise RefusedError("target_path", "holds a NUL or is too long")
    if not value.startswith("/"):
        raise RefusedError("target_path", f"{value!r}: not absolute")
    if ".." in value.split("/") or posixpath.normpath(value) != value:
        raise RefusedError("target_path", f"{value!r}: not normalized (or has a '..' component)")
    if not within(value, roots):
        raise RefusedError("target_path", f"{value!r}: not under {', '.join(roots)}")
    return value


def within(path: str, roots: Sequence[str]) -> bool:
    """Whether `path` is strictly under one of `roots` (both normalized, absolute)."""
    return any(path.startswith(root.rstrip("/") + "/") for root in roots)


def image_reference(value: str, allowed: Sequence[str]) -> str:
    """`host[:port]/path[:tag][@sha256:...]` (a tag, a digest or both), in a repository under
    one of the `allowed` prefixes (whole path segments: `reg/libinject` does not admit
    `reg/libinjectx/...`)."""
    if not value:
        raise RefusedError("image", "missing")
    try:
        reference = references.parse(value)
    except references.ReferenceError as error:
        raise RefusedError("image", str(error)) from None
    if not reference.host:
        raise RefusedError("image", f"{value!r}: expected host[:port]/repository[:tag][@digest]")
    if not reference.tag and not reference.digest:
        raise RefusedError("image", f"{value!r}: needs a tag or a digest (no implicit latest)")
    if not any(references.within(reference.repository, prefix) for prefix in allowed):
        raise RefusedError(
            "image",
            f"{value!r}: not in an allowed repository ({', '.join(allowed) or 'none allowed'})",
            Code.PERMISSION_DENIED,
            Reason.REPOSITORY,
        )
    return value


def image_for(attributes: Mapping[str, str], rules: Rules, *, keys: Sequence[bytes]) -> str:
    """The library image of a volume our webhook wrote, else a refusal.

    The attributes must be exactly `image`, `language` and `signature` (plus the kubelet's
    `csi.storage.k8s.io/*`); the image well-formed and in an allowed repository; the signature
    valid under one of `keys` for the namespace the kubelet named (its pod's: with the CSIDriver's
    podInfoOnMount the kubelet writes its pod keys over any the volume's attributes set, so the
    pod's author cannot choose it), that image and that language.
    """
    ours = {k: v for k, v in attributes.items() if not k.startswith(KUBELET_ATTRIBUTE_PREFIX)}
    if "writable" in ours:
        raise RefusedError(
            "volume_context",
            "writable volumes are not served: the pod's writes would land on the node's disk, "
            "outside its ephemeral-storage accounting",
            reason=Reason.WRITABLE,
        )
    unknown = sorted(set(ours) - ATTRIBUTES)
    if unknown:
        raise RefusedError("volume_context", f"unknown attributes: {', '.join(unknown)[:200]}")
    missing = sorted({"image", "language"} - set(ours))
    if missing:
        raise RefusedError("volume_context", f"missing {', '.join(missing)}")
    if not _NAME.fullmatch(ours["language"]):
        raise RefusedError("volume_context", f"language {ours['language'][:64]!r}: not a name")
    image = image_reference(ours["image"], rules.allowed_repositories)
    namespace = attributes.get(POD_NAMESPACE, "")
    if not namespace:
        raise RefusedError(
            "volume_context",
            f"no {POD_NAMESPACE} from the kubelet to check the signature against (is the "
            "CSIDriver's podInfoOnMount on?)",
            Code.PERMISSION_DENIED,
            Reason.UNSIGNED,
        )
    if signature.ATTRIBUTE not in ours:
        raise RefusedError(
            "volume_context",
            "no signature: only volumes the libinject webhook wrote are served",
            Code.PERMISSION_DENIED,
            Reason.UNSIGNED,
        )
    if not _LABEL.fullmatch(namespace) or not any(
        signature.verify(
            key,
            ours[signature.ATTRIBUTE],
            namespace=namespace,
            image=image,
            language=ours["language"],
        )
        for key in keys
    ):
        raise RefusedError(
            "volume_context",
            f"the signature is not the webhook's for namespace {namespace[:64]!r}, this image "
            "and language",
            Code.PERMISSION_DENIED,
            Reason.SIGNATURE,
        )
    return image
