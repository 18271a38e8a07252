"""How a library reaches the pod, written once per mode and shared by every language.

Each mode yields the pod-level objects (a volume, and for init-container mode the copy container)
and the mount that app containers get. Names are fixed per language, so a second pass finds the
same objects and adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libinject.api.types import Language, Mode
from libinject.engine.settings import LibrarySettings

# The library image contract: the library under /libinject and a static busybox for the copy.
IMAGE_LIBRARY_DIR = "/libinject"
COPY_TARGET = "/libinject-target"

NONROOT_UID = 65532


@dataclass(frozen=True)
class Delivery:
    """What one library adds to the pod, before the app containers' mounts."""

    volume: dict[str, Any]
    mount: dict[str, Any]
    init_container: dict[str, Any] | None


def object_name(language: Language) -> str:
    return f"libinject-{language}"


def delivery(
    *,
    language: Language,
    image: str,
    mode: Mode,
    size_limit: str,
    resources: dict[str, dict[str, str]],
    security_context: dict[str, Any],
    settings: LibrarySettings,
) -> Delivery:
    name = object_name(language)
    mount: dict[str, Any] = {
        "name": name,
        "mountPath": f"{settings.mount_root}/{language}",
        "readOnly": True,
    }
    init = None
    if mode is Mode.INIT_CONTAINER:
        volume: dict[str, Any] = {"name": name, "emptyDir": {"sizeLimit": size_limit}}
        init = _copy_container(name, image, resources, security_context, settings)
    elif mode is Mode.CSI:
        attributes = {"image": image, "language": str(language)}
        volume = {
            "name": name,
            "csi": {
                "driver": settings.csi_driver,
                "readOnly": True,
                "volumeAttributes": attributes,
            },
        }
    else:
        volume = {
            "name": name,
            "image": {"reference": image, "pullPolicy": settings.image_pull_policy},
        }
        mount["subPath"] = IMAGE_LIBRARY_DIR.lstrip("/")
    return Delivery(volume, mount, init)


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
