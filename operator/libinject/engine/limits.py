"""What one pod may cost the engine: bounds that no real pod reaches, checked before any work.

The engine is linear in the size of the pod, but the API server accepts pods far beyond any real
one: its write requests may carry 3 MiB of JSON, room for tens of thousands of containers or env
entries, and deciding for such a pod would hold an admission thread for seconds. Pods beyond
these bounds are skipped with `PodTooLarge` (said on the pod), at a cost independent of their
size. Real pods have a handful of containers, at most a few dozen (CI pipelines that run each
step as a container), and a few hundred env entries and mounts in all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.engine.decision import Code, Reason

CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")
MAX_CONTAINERS = 1_000
"""Containers of every kind together."""
MAX_ENTRIES = 20_000
"""Env, envFrom, volume mount, command and args entries of every container, plus the pod's
volumes."""
_ENTRY_KINDS = ("env", "envFrom", "volumeMounts", "command", "args")


def size_reason(pod: Mapping[str, Any]) -> Reason | None:
    """PodTooLarge when the pod spec is beyond a bound, else None. Its cost is bounded too: the
    containers are counted by list length before any one of them is read. It runs before the
    shape check (which reads every entry), so it trusts no type."""
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        return None
    counted = sum(_length(spec.get(kind)) for kind in CONTAINER_KINDS)
    if counted > MAX_CONTAINERS:
        return Reason(
            Code.POD_TOO_LARGE,
            f"the pod has {counted} containers, more than the {MAX_CONTAINERS} one admission "
            "may decide for",
        )
    entries = _length(spec.get("volumes")) + sum(
        _entries(container)
        for kind in CONTAINER_KINDS
        for container in _items(spec.get(kind))
        if isinstance(container, Mapping)
    )
    if entries > MAX_ENTRIES:
        return Reason(
            Code.POD_TOO_LARGE,
            f"the pod has {entries} env entries, volume mounts, command and args items and "
            f"volumes, more than the {MAX_ENTRIES} one admission may decide for",
        )
    return None


def _entries(container: Mapping[str, Any]) -> int:
    """One container's entries: a loop over the few kinds, with no call per kind, as this runs
    for every pod."""
    count = 0
    for field in _ENTRY_KINDS:
        value = container.get(field)
        if isinstance(value, list):
            count += len(value)
    return count


def _length(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
