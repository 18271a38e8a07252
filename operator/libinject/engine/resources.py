"""Resources of the copy init containers: as much as the pod already reserves, never more.

A pod's effective request is the larger of (a) its biggest init container and (b) the sum of its
app containers and native sidecars. Our init containers run first, alone, so giving them exactly
that amount does not grow the pod's footprint (and keeps a Guaranteed pod Guaranteed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.api.types import ResourceRequirements
from libinject.engine.decision import Code, Reason
from libinject.engine.quantity import format_bytes, format_millicores, to_units
from libinject.engine.settings import InitContainerSettings

COMPUTED = ("cpu", "memory")
_FORMAT = {"cpu": format_millicores, "memory": format_bytes}


def is_native_sidecar(container: Mapping[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


Resources = dict[str, dict[str, str]]


def copy_resources(
    pod_share: Resources,
    *,
    override: ResourceRequirements | None,
    minimums: InitContainerSettings,
) -> tuple[Resources, Reason | None]:
    """The init containers' resources (the policy's, else the pod's share), and a reason when
    they are too small to copy."""
    if override is not None:
        resources = {
            kind: {resource: str(amount) for resource, amount in values.items()}
            for kind, values in (("requests", override.requests), ("limits", override.limits))
            if values
        }
    else:
        resources = pod_share
    return resources, _too_small(resources.get("limits", {}), minimums)


def pod_share(spec: Mapping[str, Any], ours: frozenset[str]) -> Resources:
    """What the pod already reserves: depends on the pod only, so computed once per pod."""
    inits = [c for c in spec.get("initContainers") or () if c.get("name") not in ours]
    running = list(spec.get("containers") or ()) + [c for c in inits if is_native_sidecar(c)]
    plain_inits = [c for c in inits if not is_native_sidecar(c)]
    out: Resources = {}
    for kind in ("requests", "limits"):
        values = {}
        for resource in COMPUTED:
            amount = _amount(kind, resource, running=running, plain_inits=plain_inits)
            if amount:
                values[resource] = _FORMAT[resource](amount)
        if values:
            out[kind] = values
    return out


def _amount(kind: str, resource: str, *, running: list[Any], plain_inits: list[Any]) -> int | None:
    """In millicores for cpu, bytes for memory."""
    declared = [_get(c, kind, resource) for c in running]
    if kind == "limits" and None in declared:
        return None  # one unlimited container: the pod has no limit, nor will ours
    together = sum(d for d in declared if d is not None)
    biggest = max((_get(c, kind, resource) or 0 for c in plain_inits), default=0)
    return max(together, biggest)


def _get(container: Mapping[str, Any], kind: str, resource: str) -> int | None:
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    return None if value is None else to_units(resource, value)


def _too_small(limits: Mapping[str, str], minimums: InitContainerSettings) -> Reason | None:
    floors = {"cpu": minimums.min_cpu_millis, "memory": minimums.min_memory_bytes}
    for resource, floor in floors.items():
        if resource in limits and to_units(resource, limits[resource]) < floor:
            return Reason(
                Code.RESOURCES_TOO_SMALL,
                f"the pod's {resource} limit ({limits[resource]}) leaves the copy step less "
                f"than {_FORMAT[resource](floor)}",
            )
    return None
