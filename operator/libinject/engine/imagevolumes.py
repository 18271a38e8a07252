"""Whether this cluster can mount a library image as an image volume, from the versions it reports.

The API server must keep the `image` volume source (the ImageVolume feature: beta and on by
default from Kubernetes 1.35), and every node must mount it with a subPath, as the engine's
image-volume mode does: a kubelet of 1.35 or later on containerd 2.2+ or CRI-O 1.33+. The pod may
land on any node, so one node short of that is enough to say no. Feature gates do not show
through the API: versions are the signal, and the operator's `autoImageVolumes` setting turns the
choice off where a gate was turned off by hand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from libinject.engine.settings import ImageVolumeSupport

KUBERNETES = (1, 35)
RUNTIMES = {"containerd": (2, 2), "cri-o": (1, 33)}
RUNTIME_NAMES = " or ".join(f"{name} {major}.{minor}+" for name, (major, minor) in RUNTIMES.items())

_VERSION = re.compile(r"v?(\d+)\.(\d+)")  # a leading major.minor: v1.36.3, v1.35.0-eks-4f2c
_RUNTIME = re.compile(r"([a-z0-9.-]+)://(.*)")  # containerd://2.2.0, cri-o://1.33.1


def _major_minor(text: str) -> tuple[int, int] | None:
    found = _VERSION.match(text)
    return None if found is None else (int(found[1]), int(found[2]))


def _at_least(text: str, minimum: tuple[int, int]) -> bool:
    version = _major_minor(text)
    return version is not None and version >= minimum


def server_problem(git_version: str | None) -> str | None:
    """Why the API server cannot be counted on to keep image volumes, or None."""
    if git_version is None:
        return "the API server's version is not known yet"
    if not _at_least(git_version, KUBERNETES):
        return f"the API server is {git_version}, image volumes are on by default from v1.35"
    return None


def node_problem(name: str, node_info: Mapping[str, Any] | None) -> str | None:
    """Why the node cannot mount an image volume with a subPath, or None: its kubelet's version
    and its container runtime's, from the Node's status.nodeInfo."""
    info = node_info if isinstance(node_info, Mapping) else {}
    kubelet = str(info.get("kubeletVersion") or "")
    if not _at_least(kubelet, KUBERNETES):
        return f"node {name}: kubelet {kubelet or 'of unknown version'}, not v1.35+"
    runtime = str(info.get("containerRuntimeVersion") or "")
    found = _RUNTIME.fullmatch(runtime)
    minimum = RUNTIMES.get(found[1]) if found else None
    if found is None or minimum is None or not _at_least(found[2], minimum):
        shown = runtime or "unknown"
        return f"node {name}: container runtime {shown}, not {RUNTIME_NAMES}"
    return None


def support(
    *, server_version: str | None, node_problems: Mapping[str, str | None]
) -> ImageVolumeSupport:
    """The verdict for the whole cluster, from the API server's version and each node's problem
    (None for a node that can). The first problem by node name is named, with a count of the
    others, so the reason stays short on a large cluster."""
    problem = server_problem(server_version)
    if problem is not None:
        return ImageVolumeSupport(False, problem)
    if not node_problems:
        return ImageVolumeSupport(False, "no node is known yet")
    failing = [name for name, problem in node_problems.items() if problem is not None]
    if failing:
        more = f" (and {len(failing) - 1} more nodes)" if len(failing) > 1 else ""
        return ImageVolumeSupport(False, f"{node_problems[min(failing)]}{more}")
    return ImageVolumeSupport(
        True, f"the API server is {server_version} and every node mounts them"
    )
