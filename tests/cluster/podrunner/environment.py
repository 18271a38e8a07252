"""A container's environment, resolved the way the kubelet's makeEnvironmentVariables does it.

envFrom first (later sources override earlier ones), then `env` in order: a `value` is expanded
against everything resolved so far, a `valueFrom` is read and not expanded, an optional source
or key that is missing leaves the variable unset. What the kubelet adds on top (service links
such as KUBERNETES_SERVICE_HOST) is not emulated: nothing here answers on a service's IP.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cluster.podrunner.downward import field_value, resource_value
from cluster.podrunner.errors import ContainerConfigError
from cluster.podrunner.expansion import expand

Pod = Mapping[str, Any]
Container = Mapping[str, Any]
Reader = Callable[[str], Mapping[str, Any] | None]


class Sources(Protocol):
    """Objects of the pod's namespace as the API serves them (JSON, camelCase), None if absent."""

    def config_map(self, name: str) -> Mapping[str, Any] | None: ...

    def secret(self, name: str) -> Mapping[str, Any] | None: ...

    def allocatable(self) -> Mapping[str, str]:
        """The pod's node's allocatable resources (default limits for the downward API)."""
        ...


def resolve_env(
    pod: Pod, container: Container, *, sources: Sources, host_ip: str
) -> dict[str, str]:
    """The container's variables by name; `host_ip` is status.hostIP and status.podIP."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        env.update(_from_source(source, sources))
    for variable in container.get("env") or ():
        value = _value(
            pod, variable, container=container, env=env, sources=sources, host_ip=host_ip
        )
        if value is not None:
            env[str(variable["name"])] = value
    return env


def _from_source(source: Mapping[str, Any], sources: Sources) -> dict[str, str]:
    prefix = str(source.get("prefix") or "")
    if source.get("configMapRef"):
        data = _object(source["configMapRef"], kind="ConfigMap", read=sources.config_map)
        entries = dict((data or {}).get("data") or {})
    elif source.get("secretRef"):
        data = _object(source["secretRef"], kind="Secret", read=sources.secret)
        entries = secret_data(data or {})
    else:
        raise ContainerConfigError(f"envFrom {dict(source)} names no ConfigMap or Secret")
    return {prefix + key: value for key, value in entries.items()}


def _value(
    pod: Pod,
    variable: Mapping[str, Any],
    *,
    container: Container,
    env: Mapping[str, str],
    sources: Sources,
    host_ip: str,
) -> str | None:
    """The variable's value, or None when an optional source leaves it unset."""
    value = str(variable.get("value") or "")
    source = variable.get("valueFrom")
    if value or not source:
        return expand(value, env)
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"], host_ip=host_ip)
    if "resourceFieldRef" in source:
        selector = source["resourceFieldRef"]
        return resource_value(pod, container, selector=selector, allocatable=sources.allocatable)
    if "configMapKeyRef" in source:
        return _key(source["configMapKeyRef"], kind="ConfigMap", read=sources.config_map)
    if "secretKeyRef" in source:
        return _key(source["secretKeyRef"], kind="Secret", read=sources.secret)
    raise ContainerConfigError(f"env {variable.get('name')!r}: unsupported valueFrom {source}")


def _key(selector: Mapping[str, Any], *, kind: str, read: Reader) -> str | None:
    data = _object(selector, kind=kind, read=read)
    if data is None:
        return None
    entries = secret_data(data) if kind == "Secret" else dict(data.get("data") or {})
    key = str(selector.get("key", ""))
    if key in entries:
        return entries[key]
    if selector.get("optional"):
        return None
    raise ContainerConfigError(f"couldn't find key {key} in {kind} {selector.get('name')}")


def _object(selector: Mapping[str, Any], *, kind: str, read: Reader) -> Mapping[str, Any] | None:
    """The referenced object; None if it is missing and optional."""
    name = str(selector.get("name", ""))
    found: Mapping[str, Any] | None = read(name)
    if found is None and not selector.get("optional"):
        raise ContainerConfigError(f"{kind} {name!r} not found")
    return found


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's values as text; bytes that are not UTF-8 survive the trip to the environment
    (surrogateescape), as the kubelet passes them through unchanged."""
    return {
        key: base64.b64decode(value).decode("utf-8", "surrogateescape")
        for key, value in (secret.get("data") or {}).items()
    }
