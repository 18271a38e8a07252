"""How a library reaches the pod, written once per mode and shared by every language.

Each mode yields the pod-level objects (a volume, and for init-container mode the copy container)
and the mount that app containers get. Names are fixed per language (and version, for a second
one in a pod), so a second pass finds the same objects and adds nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from libinject.api.types import CopySecurityContext, Language, Mode
from libinject.engine import signature
from libinject.engine.settings import LibrarySettings

# The library image contract: the library under /libinject and a static busybox for the copy.
IMAGE_LIBRARY_DIR = "/libinject"
BUNDLE_MANIFEST = "bundle.txt"  # at the library's root, in every language's bundle
COPY_TARGET = "/libinject-target"

NONROOT_UID = 65532
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"  # the volume the ServiceAccount plugin adds
VERSION_LABEL_LENGTH = 32  # of a version in a name: with the rest, within a label's 63


@dataclass(frozen=True)
class Delivery:
    """What one library adds to the pod, before the app containers' mounts."""

    volume: dict[str, Any]
    mount: dict[str, Any]
    init_container: dict[str, Any] | None


def object_name(language: Language, version: str | None = None) -> str:
    """The volume's and copy container's name: libinject-<language>, and for another version
    in the same pod (a container's own request) libinject-<language>-<version as a label>-<six
    hex digits of its hash>, since two versions can read alike as labels (1.0-rc, 1-0.rc)."""
    if version is None:
        return f"libinject-{language}"
    label = re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")[:VERSION_LABEL_LENGTH]
    digest = hashlib.sha256(version.encode()).hexdigest()[:6]
    return f"libinject-{language}-{label}-{digest}"


def delivery(
    *,
    language: Language,
    version: str | None = None,
    image: str,
    mode: Mode,
    namespace: str,
    size_limit: str,
    resources: dict[str, dict[str, str]],
    security_context: dict[str, Any],
    settings: LibrarySettings,
    token_mount: dict[str, Any] | None = None,
) -> Delivery:
    """What the library `image` adds to the pod in `mode`; with `version`, as a second version of
    its language in the pod, under names and a path of its own."""
    name = object_name(language, version)
    mount: dict[str, Any] = {
        "name": name,
        "mountPath": f"{settings.mount_root}/{name.removeprefix('libinject-')}",
        "readOnly": True,
    }
    init = None
    if mode is Mode.INIT_CONTAINER:
        volume: dict[str, Any] = {"name": name, "emptyDir": {"sizeLimit": size_limit}}
        init = _copy_container(name, image, resources, security_context, settings)
        if token_mount is not None:
            init["volumeMounts"].append(dict(token_mount))
    elif mode is Mode.CSI:
        volume = {
            "name": name,
            "csi": {
                "driver": settings.csi_driver,
                "readOnly": True,
                "volumeAttributes": csi_attributes(
                    image=image, language=language, namespace=namespace, key=settings.csi_key
                ),
            },
        }
    else:
        volume = {
            "name": name,
            "image": {"reference": image, "pullPolicy": settings.image_pull_policy},
        }
        mount["subPath"] = IMAGE_LIBRARY_DIR.lstrip("/")
    return Delivery(volume, mount, init)


def csi_attributes(*, image: str, language: Language, namespace: str, key: bytes) -> dict[str, str]:
    """A CSI volume's attributes: the image, its language, and (with a key) the signature that
    lets the plugin serve it to pods of `namespace` only; without a key, no signature."""
    attributes = {"image": image, "language": str(language)}
    if key:
        attributes[signature.ATTRIBUTE] = signature.sign(
            key, namespace=namespace, image=image, language=str(language)
        )
    return attributes


def token_mount(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ServiceAccount admission plugin's token mount, if the pod's containers have it.

    That plugin runs before webhooks and mounts the token into every container; after we return
    it would add the same mount to our copy containers, and the API server answers such a change
    by calling us again (reinvocation): a second round trip for every pod. Adding its mount
    ourselves gives the same final pod without that call. Only the plugin's own volume is
    copied: a mount the user put at that path is theirs, and the plugin leaves those alone."""
    for kind in ("containers", "initContainers"):
        for container in spec.get(kind) or ():
            for mount in container.get("volumeMounts") or ():
                name = str(mount.get("name", ""))
                if mount.get("mountPath") == TOKEN_PATH and name.startswith(TOKEN_VOLUME_PREFIX):
                    return dict(mount)
    return None


def given_security_context(given: CopySecurityContext) -> dict[str, Any]:
    """A policy's copy-container context as a pod spec holds it: what it sets, nothing more (a
    new dict each time, as security_context's)."""
    context: dict[str, Any] = {
        key: value
        for key, value in (
            ("runAsUser", given.run_as_user),
            ("runAsGroup", given.run_as_group),
            ("runAsNonRoot", given.run_as_non_root),
            ("allowPrivilegeEscalation", given.allow_privilege_escalation),
            ("readOnlyRootFilesystem", given.read_only_root_filesystem),
        )
        if value is not None
    }
    if given.capabilities is not None:
        context["capabilities"] = {"drop": list(given.capabilities.drop)}
    if given.seccomp_profile is not None:
        profile = {"type": given.seccomp_profile.type.value}
        if given.seccomp_profile.localhost_profile is not None:
            profile["localhostProfile"] = given.seccomp_profile.localhost_profile
        context["seccompProfile"] = profile
    return context


def restricted_failures(context: Mapping[str, Any], *, pod: Mapping[str, Any]) -> list[str]:
    """What Pod Security's restricted profile refuses in a container with `context` in a pod
    whose securityContext is `pod` (runAsNonRoot, runAsUser and seccompProfile may come from
    either, the container's first)."""
    failures = []
    if context.get("allowPrivilegeEscalation") is not False:
        failures.append("allowPrivilegeEscalation must be false")
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or ()):
        failures.append("capabilities must drop ALL")
    if context.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
        failures.append("runAsNonRoot must be true (on the container or the pod)")
    if context.get("runAsUser", pod.get("runAsUser")) == 0:
        failures.append("runAsUser must not be 0")
    seccomp = context.get("seccompProfile") or pod.get("seccompProfile")
    kind = seccomp.get("type") if isinstance(seccomp, Mapping) else None
    if kind not in ("RuntimeDefault", "Localhost"):
        failures.append(
            "seccompProfile must be RuntimeDefault or Localhost (on the container or the pod)"
        )
    return failures


def _copy_container(
    name: str,
    image: str,
    resources: dict[str, dict[str, str]],
    security_context: dict[str, Any],
    settings: LibrarySettings,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["/bin/busybox", "cp", "-R", f"{IMAGE_LIBRARY_DIR}/.", f"{COPY_TARGET}/"],
        "volumeMounts": [{"name": name, "mountPath": COPY_TARGET}],
        "securityContext": security_context,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if resources:
        container["resources"] = resources
    return container


def security_context(*, restricted: bool, pod_run_as_user: int | None) -> dict[str, Any]:
    """The copy container's context, a new dict each time (results are never shared).

    Every namespace gets the hardening the copy step needs; restricted namespaces also get the
    user checks of the restricted profile, which elsewhere a root-only image (a user's `image`
    override) could fail.
    """
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    if restricted:
        context["runAsNonRoot"] = True
        context["seccompProfile"] = {"type": "RuntimeDefault"}
        if not pod_run_as_user:
            context["runAsUser"] = NONROOT_UID
    return context
