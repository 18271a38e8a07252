"""The objects a pod refers to, read through the API server (the kubelet reads them too)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from cluster import kubejson
from cluster.podrunner.errors import ContainerConfigError


class ApiSources:
    """ConfigMaps, Secrets and the node of one pod as the API serves them (JSON, camelCase).
    What was found is read once per pod (the kubelet caches it too); what was missing is read
    again when asked for, so a caller may wait for it."""

    def __init__(self, core: client.CoreV1Api, *, namespace: str, node_name: str) -> None:
        self.core = core
        self.namespace = namespace
        self.node_name = node_name
        self._cache: dict[tuple[str, str], Mapping[str, Any] | None] = {}

    def config_map(self, name: str) -> Mapping[str, Any] | None:
        return self._read(name, kind="configmap", read=self.core.read_namespaced_config_map)

    def secret(self, name: str) -> Mapping[str, Any] | None:
        return self._read(name, kind="secret", read=self.core.read_namespaced_secret)

    def allocatable(self) -> Mapping[str, str]:
        if not self.node_name:
            raise ContainerConfigError(
                "a resource limit the container does not set defaults to its node's allocatable,"
                " and the pod is not scheduled (spec.nodeName is empty)"
            )
        node = self.core.read_node(self.node_name, _preload_content=False)
        return dict(kubejson.json_of(node).get("status", {}).get("allocatable") or {})

    def _read(self, name: str, *, kind: str, read: Callable[..., Any]) -> Mapping[str, Any] | None:
        key = (kind, name)
        if self._cache.get(key) is None:
            self._cache[key] = _get(lambda: read(name, self.namespace, _preload_content=False))
        return self._cache[key]


def _get(call: Callable[[], Any]) -> Mapping[str, Any] | None:
    try:
        response = call()
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return dict(json.loads(response.data))
