"""A delivery mode a pod asks for with the annotation libinject.dev/mode.

Granted only when the winning policy's injection.allowedModes names it and the cluster can
deliver it for this library; otherwise refused with the reason, and the policy's mode applies.
"""

from __future__ import annotations

from collections.abc import Mapping

from libinject.api.types import InjectionSpec, Mode
from libinject.engine import references
from libinject.engine.decision import Code, Reason
from libinject.engine.settings import LibrarySettings
from libinject.engine.versions import shown

MODE_ANNOTATION = "libinject.dev/mode"
_CONCRETE = {mode.value: mode for mode in Mode if mode is not Mode.AUTO}


def requested_mode(
    injection: InjectionSpec,
    annotations: Mapping[str, object],
    *,
    image: str,
    libraries: LibrarySettings,
) -> tuple[Mode | None, Reason | None]:
    """(the mode, why it is granted), or (None, why the request is refused), or (None, None)
    when the pod asks for nothing."""
    if MODE_ANNOTATION not in annotations:
        return None, None
    raw = annotations[MODE_ANNOTATION]
    mode = _CONCRETE.get(raw) if isinstance(raw, str) else None
    asked = f"{MODE_ANNOTATION}={shown(raw)}"
    if mode is None:
        return None, _refused(f"{asked} refused: not a mode (init-container, csi, image-volume)")
    if mode not in injection.allowed_modes:
        allowed = ", ".join(injection.allowed_modes) or "none"
        return None, _refused(f"{asked} refused: allowedModes is [{allowed}]")
    unavailable = _unavailable(mode, image=image, libraries=libraries)
    if unavailable is not None:
        return None, _refused(f"{asked} refused: {unavailable}")
    return mode, Reason(Code.MODE_REQUESTED, f"{asked} is allowed")


def _unavailable(mode: Mode, *, image: str, libraries: LibrarySettings) -> str | None:
    """Why this cluster cannot deliver `image` in `mode`, or None."""
    if mode is Mode.CSI and not libraries.csi_registered:
        return f"the CSI driver {libraries.csi_driver} is not registered"
    if mode is Mode.CSI and not csi_pulls(image, libraries=libraries):
        return f"the CSI plugin pulls only under {libraries.registry}"
    if mode is Mode.IMAGE_VOLUME and not libraries.image_volumes.available:
        return f"no image volumes: {libraries.image_volumes.reason}"
    return None


def csi_pulls(image: str, *, libraries: LibrarySettings) -> bool:
    """Whether the CSI plugin would pull `image`: the manifests give it one
    --allowed-repository, the operator's registry; elsewhere it would publish an empty volume."""
    # Policies' images are held to the reference grammar when parsed: this parse cannot fail.
    return references.within(references.parse(image).repository, libraries.registry)


def _refused(why: str) -> Reason:
    return Reason(Code.MODE_NOT_ALLOWED, f"{why}; the policy's mode applies")
