"""The downward API in env values: fieldRef and resourceFieldRef, resolved as the kubelet does
(pkg/kubelet/kubelet_pods.go podFieldSelectorRuntimeValue, pkg/api/v1/resource helpers)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

from cluster.podrunner.errors import ContainerConfigError

Pod = Mapping[str, Any]
# Resources whose missing limit the kubelet fills from the node's allocatable.
DEFAULTED_LIMITS = ("cpu", "memory", "ephemeral-storage")


def field_value(pod: Pod, selector: Mapping[str, Any], *, host_ip: str) -> str:
    """A fieldRef's value; the pod's and the node's addresses are both `host_ip` (the app runs
    on this host's network)."""
    version = selector.get("apiVersion") or "v1"
    path = str(selector.get("fieldPath", ""))
    if version != "v1":
        raise ContainerConfigError(f"fieldRef {path!r}: unsupported pod version {version!r}")
    subscripted = _split_subscript(path)
    if subscripted is not None:
        return _subscripted(pod, path, subscript=subscripted)
    metadata, spec = pod.get("metadata", {}), pod.get("spec", {})
    values: dict[str, Callable[[], str]] = {
        "metadata.name": lambda: str(metadata.get("name", "")),
        "metadata.namespace": lambda: str(metadata.get("namespace", "")),
        "metadata.uid": lambda: str(metadata.get("uid", "")),
        "spec.nodeName": lambda: str(spec.get("nodeName", "")),
        "spec.host": lambda: str(spec.get("nodeName", "")),  # the old name of nodeName
        "spec.serviceAccountName": lambda: str(spec.get("serviceAccountName", "")),
        "status.hostIP": lambda: host_ip,
        "status.hostIPs": lambda: host_ip,
        "status.podIP": lambda: host_ip,
        "status.podIPs": lambda: host_ip,
    }
    if path not in values:
        raise ContainerConfigError(f"fieldRef {path!r} is not supported in env")
    return values[path]()


def _split_subscript(path: str) -> tuple[str, str] | None:
    """`metadata.labels['k']` -> ("metadata.labels", "k"), as fieldpath.SplitMaybeSubscriptedPath."""
    if not path.endswith("']"):
        return None
    head, separator, key = path.removesuffix("']").partition("['")
    if not separator or not head:
        return None
    return head, key


def _subscripted(pod: Pod, path: str, *, subscript: tuple[str, str]) -> str:
    head, key = subscript
    if head not in ("metadata.labels", "metadata.annotations"):
        raise ContainerConfigError(f"fieldRef {path!r}: {head} does not support a subscript")
    entries = pod.get("metadata", {}).get(head.removeprefix("metadata."), {}) or {}
    return str(entries.get(key, ""))


def resource_value(
    pod: Pod,
    container: Mapping[str, Any],
    *,
    selector: Mapping[str, Any],
    allocatable: Callable[[], Mapping[str, str]],
) -> str:
    """A resourceFieldRef's value: the limit or request divided by the divisor, rounded up.

    A missing cpu, memory or ephemeral-storage limit is the node's allocatable amount, as the
    kubelet defaults it; `allocatable` is called only then."""
    name = selector.get("containerName")
    if name:
        container = _container(pod, str(name))
    kind, _, resource = str(selector.get("resource", "")).partition(".")
    if kind not in ("limits", "requests") or not _supported(resource):
        raise ContainerConfigError(
            f"resourceFieldRef {selector.get('resource')!r} is not supported"
        )
    amounts = (container.get("resources") or {}).get(kind) or {}
    amount = amounts.get(resource)
    if amount is None and kind == "limits" and resource in DEFAULTED_LIMITS:
        amount = allocatable().get(resource)
    quantity = parse_quantity(amount if amount is not None else "0")
    divisor = parse_quantity(selector.get("divisor") or "0")
    if divisor == 0:
        divisor = Decimal(1)
    if resource == "cpu":  # in whole millicores, like Quantity.MilliValue
        return str(_ceil_div(math.ceil(quantity * 1000), math.ceil(divisor * 1000)))
    return str(_ceil_div(math.ceil(quantity), math.ceil(divisor)))


def _supported(resource: str) -> bool:
    return resource in DEFAULTED_LIMITS or resource.startswith("hugepages-")


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _container(pod: Pod, name: str) -> Mapping[str, Any]:
    spec = pod.get("spec", {})
    for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        if container.get("name") == name:
            return dict(container)
    raise ContainerConfigError(f"resourceFieldRef: the pod has no container {name!r}")
