"""What the CSI node plugin accepts from the kubelet (pure: strings in, a value or a refusal out).

Every volume id, target path and image reference passes through here before the plugin touches
the file system or a registry:
  - a volume id becomes a file name (`<root>/volumes/<id>.json`): a conservative charset, bounded
    length, never `.` or `..`, no `/`;
  - a target path is where a bind mount goes: absolute, already normalized, no `..` component,
    and strictly under one of the allowed roots (the kubelet's pods directory by default);
  - an image reference must come from one of the allowed registries (`host[:port]/prefix`);
  - `writable` is "true" or "false" (absent: false), and a path an overlay's options name holds
    no `,`, `:` or `\\` (mount options cannot express them).
Each refusal says which field and why, and carries the gRPC status code the plugin answers with.
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from libinject.api.types import Flavor, Language
from libinject.engine import versions

KUBELET_PODS = "/var/lib/kubelet/pods"
MAX_VOLUME_ID = 128
MAX_PATH = 4096
MAX_REFERENCE = 512
# What the kubelet adds to an inline volume's attributes (podInfoOnMount): accepted and ignored.
KUBELET_ATTRIBUTE_PREFIX = "csi.storage.k8s.io/"
ATTRIBUTES = frozenset({"image", "language", "flavor", "version"})
# How the library is mounted rather than which one: beside either way of naming the image.
OPTIONS = frozenset({"writable"})
# What an overlay's `-o lowerdir=...,upperdir=...,workdir=...` cannot hold in a path.
OVERLAY_UNSAFE = (",", ":", "\\")

_VOLUME_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")


class Code(enum.Enum):
    """The gRPC status a refusal maps to (named as grpc.StatusCode names them)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PERMISSION_DENIED = "PERMISSION_DENIED"


class RefusedError(ValueError):
    """A request the plugin will not act on: `field` is what was wrong, the message why."""

    def __init__(self, field: str, message: str, code: Code = Code.INVALID_ARGUMENT) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code


@dataclass(frozen=True)
class Rules:
    """The node's configuration of what is allowed."""

    allowed_registries: tuple[str, ...]
    registry: str = ""  # where language/flavor/version attributes point: `<registry>/<lang>-...`
    target_roots: tuple[str, ...] = (KUBELET_PODS,)

    def __post_init__(self) -> None:
        for entry in self.allowed_registries:
            registry_prefix(entry)
        if self.registry:
            registry_prefix(self.registry)
        for root in self.target_roots:
            if not root.startswith("/") or posixpath.normpath(root) != root or root == "/":
                raise ValueError(f"target root {root!r}: must be an absolute normalized path")


def registry_prefix(entry: str) -> str:
    """Checks an allowed-registry entry (`host[:port]` or `host[:port]/path`); returns it."""
    host, _, path = entry.partition("/")
    if not _HOST.fullmatch(host) or (path and not all(_NAME.fullmatch(p) for p in path.split("/"))):
        raise ValueError(f"registry {entry!r}: expected host[:port] or host[:port]/path")
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
    """`host[:port]/path[:tag][@sha256:...]`, from one of the `allowed` registries."""
    if not value or len(value) > MAX_REFERENCE or "\0" in value:
        raise RefusedError("image", "missing or too long")
    name, at, digest = value.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise RefusedError("image", f"{value!r}: a digest must be sha256:<64 hex digits>")
    host, slash, rest = name.partition("/")
    if not slash or not _HOST.fullmatch(host):
        raise RefusedError("image", f"{value!r}: expected host[:port]/repository[:tag][@digest]")
    repository, colon, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if (colon and not _TAG.fullmatch(tag)) or not all(
        _NAME.fullmatch(part) for part in repository.split("/")
    ):
        raise RefusedError("image", f"{value!r}: not a valid repository, tag or digest")
    if not colon and not at:
        raise RefusedError("image", f"{value!r}: needs a tag or a digest (no implicit latest)")
    if not any(name.startswith(prefix + "/") for prefix in allowed):
        raise RefusedError(
            "image",
            f"{value!r}: not from an allowed registry ({', '.join(allowed) or 'none allowed'})",
            Code.PERMISSION_DENIED,
        )
    return value


def image_for(attributes: Mapping[str, str], rules: Rules) -> str:
    """The library image an inline volume's attributes name.

    Either `image` (a full reference; the webhook also writes `language` next to it, which
    only names the volume's library for people reading the pod), or `language`, `flavor` and
    `version`, which name `<registry>/<language>-<flavor>:<version>` as libinject.engine.inject
    does.
    """
    ours = {
        k: v
        for k, v in attributes.items()
        if not k.startswith(KUBELET_ATTRIBUTE_PREFIX) and k not in OPTIONS
    }
    unknown = sorted(set(ours) - ATTRIBUTES)
    if unknown:
        raise RefusedError("volume_context", f"unknown attributes: {', '.join(unknown)}")
    if "image" in ours:
        if not set(ours) <= {"image", "language"}:
            raise RefusedError("volume_context", "give either image or language/flavor/version")
        if "language" in ours and not _NAME.fullmatch(ours["language"]):
            raise RefusedError("volume_context", f"language {ours['language']!r}: not a name")
        return image_reference(ours["image"], rules.allowed_registries)
    missing = sorted(ATTRIBUTES - {"image"} - set(ours))
    if missing:
        raise RefusedError("volume_context", f"name an image, or give {', '.join(missing)}")
    if not rules.registry:
        raise RefusedError("volume_context", "no --registry configured for language/flavor/version")
    try:  # the webhook's one image builder: a known language and flavor, a version as tag
        reference = versions.library_image(
            registry=rules.registry,
            language=Language(ours["language"]),
            flavor=Flavor(ours["flavor"]),
            version=ours["version"],
        )
    except ValueError as error:
        raise RefusedError("volume_context", str(error)) from None
    return image_reference(reference, rules.allowed_registries)


def writable(attributes: Mapping[str, str]) -> bool:
    """The `writable` attribute: "true" asks for an overlay with a per-volume upper directory,
    "false" or none for the read-only bind mount; any other value is refused."""
    value = attributes.get("writable", "false")
    if value not in {"true", "false"}:
        raise RefusedError("volume_context", f"writable {value[:64]!r}: expected true or false")
    return value == "true"


def overlay_path(value: str, field: str) -> str:
    """A path an overlay mount's options name (lowerdir, upperdir, workdir): those options are
    separated by `,`, lower directories by `:`, and `\\` escapes, so none of them may appear."""
    unsafe = " ".join(repr(char) for char in (*OVERLAY_UNSAFE, "\0") if char in value)
    if unsafe:
        raise RefusedError(field, f"{value!r}: an overlay cannot name a path holding {unsafe}")
    return value
