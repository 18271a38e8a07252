"""Hostile pods shared by the CLI, engine and admission tests: each breaks the shape the engine
reads (libinject.engine.shape) at one field, named as the message must name it."""

from __future__ import annotations

import copy
from typing import Any

from builders import container, pod

_RICH_FIELDS: dict[str, Any] = {
    "command": ["java", "-Xmx1g"],
    "args": ["-jar", "/app/app.jar"],
    "env": [
        {"name": "A", "value": "1"},
        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "JDK_JAVA_OPTIONS", "value": "-Xss1m"},
    ],
    "envFrom": [{"configMapRef": {"name": "cm"}}],
    "volumeMounts": [
        {"name": "data", "mountPath": "/data", "readOnly": True},
        {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
    ],
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1}},
    "securityContext": {"runAsUser": 1000},
}
# A pod that sets every field the engine reads, with the right types, in every kind of container.
RICH_POD: dict[str, Any] = pod(
    container("app", **_RICH_FIELDS),
    labels={"app.kubernetes.io/name": "web", "tags.datadoghq.com/env": "prod"},
    annotations={"libinject.dev/python.version": "4.16.0"},
    initContainers=[
        container("setup", **_RICH_FIELDS),
        container("sidecar", restartPolicy="Always", **_RICH_FIELDS),
    ],
    ephemeralContainers=[container("debug", **_RICH_FIELDS)],
    volumes=[{"name": "data", "emptyDir": {}}, {"name": "kube-api-access-x", "projected": {}}],
    securityContext={"runAsUser": 1000, "runAsNonRoot": True},
    nodeSelector={"kubernetes.io/os": "linux"},
    os={"name": "linux"},
)


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """RICH_POD with `value` at `path` (created along the way where missing)."""
    target = copy.deepcopy(RICH_POD)
    parent = target
    for key in path[:-1]:
        parent = parent.setdefault(key, {}) if isinstance(parent, dict) else parent[key]
    parent[path[-1]] = value
    return target


C0 = ("spec", "containers", 0)
# (id, pod, the field the message names)
MALFORMED_PODS: list[tuple[str, dict[str, Any], str]] = [
    ("metadata-string", _with(("metadata",), "web"), "metadata"),
    ("metadata-name-list", _with(("metadata", "name"), ["web"]), "metadata.name"),
    ("generate-name-int", _with(("metadata", "generateName"), 7), "metadata.generateName"),
    ("labels-list", _with(("metadata", "labels"), ["a=b"]), "metadata.labels"),
    ("label-value-int", _with(("metadata", "labels", "app"), 1), "metadata.labels[app]"),
    ("label-key-int", _with(("metadata", "labels", 1), "a"), "metadata.labels"),
    ("annotations-list", _with(("metadata", "annotations"), ["a"]), "metadata.annotations"),
    ("version-annotation-number", _with(("metadata", "annotations", "libinject.dev/python.version"), 3.12),
     "metadata.annotations[libinject.dev/python.version]"),
    ("annotation-value-mapping", _with(("metadata", "annotations", "a"), {"b": "c"}), "metadata.annotations[a]"),
    ("spec-list", _with(("spec",), [{"containers": []}]), "spec"),
    ("spec-string", _with(("spec",), "x"), "spec"),
    ("containers-mapping", _with(("spec", "containers"), {"name": "app"}), "spec.containers"),
    ("container-string", _with(("spec", "containers", 0), "app"), "spec.containers[0]"),
    ("container-name-int", _with((*C0, "name"), 5), "spec.containers[0].name"),
    ("container-without-name", _with(("spec", "containers", 0), {"image": "a"}), "spec.containers[0].name"),
    ("init-container-without-name", _with(("spec", "initContainers", 0), {"image": "a"}), "spec.initContainers[0].name"),
    ("ephemeral-container-without-name", _with(("spec", "ephemeralContainers", 0), {"image": "a"}),
     "spec.ephemeralContainers[0].name"),
    ("init-containers-string", _with(("spec", "initContainers"), "setup"), "spec.initContainers"),
    ("env-mapping", _with((*C0, "env"), {"A": "1"}), "spec.containers[0].env"),
    ("env-string", _with((*C0, "env"), "A=1"), "spec.containers[0].env"),
    ("env-entry-string", _with((*C0, "env", 1), "B=2"), "spec.containers[0].env[1]"),
    ("env-value-int", _with((*C0, "env", 0, "value"), 1), "spec.containers[0].env[0].value"),
    ("env-value-float", _with((*C0, "env", 0, "value"), 1.5), "spec.containers[0].env[0].value"),
    ("env-value-bool", _with((*C0, "env", 0, "value"), True), "spec.containers[0].env[0].value"),
    ("env-value-mapping", _with((*C0, "env", 0, "value"), {"a": "b"}), "spec.containers[0].env[0].value"),
    ("env-name-list", _with((*C0, "env", 0, "name"), ["A"]), "spec.containers[0].env[0].name"),
    ("env-value-from-string", _with((*C0, "env", 1, "valueFrom"), "x"), "spec.containers[0].env[1].valueFrom"),
    ("command-string", _with((*C0, "command"), "java -jar app.jar"), "spec.containers[0].command"),
    ("args-item-int", _with((*C0, "args", 1), 8080), "spec.containers[0].args[1]"),
    ("args-item-mapping", _with(("spec", "initContainers", 0, "args"), ["-jar", {"a": "b"}]),
     "spec.initContainers[0].args[1]"),
    ("env-from-mapping", _with((*C0, "envFrom"), {"configMapRef": {}}), "spec.containers[0].envFrom"),
    ("volume-mounts-mapping", _with((*C0, "volumeMounts"), {"name": "data"}), "spec.containers[0].volumeMounts"),
    ("volume-mount-string", _with((*C0, "volumeMounts", 0), "/data"), "spec.containers[0].volumeMounts[0]"),
    ("mount-path-int", _with((*C0, "volumeMounts", 0, "mountPath"), 1), "spec.containers[0].volumeMounts[0].mountPath"),
    ("resources-list", _with((*C0, "resources"), ["cpu"]), "spec.containers[0].resources"),
    ("limits-list", _with((*C0, "resources", "limits"), ["cpu"]), "spec.containers[0].resources.limits"),
    ("cpu-not-a-quantity", _with((*C0, "resources", "requests", "cpu"), "lots"),
     "spec.containers[0].resources.requests[cpu]"),
    ("memory-a-boolean", _with((*C0, "resources", "limits", "memory"), True),
     "spec.containers[0].resources.limits[memory]"),
    ("restart-policy-int", _with(("spec", "initContainers", 0, "restartPolicy"), 1),
     "spec.initContainers[0].restartPolicy"),
    ("volumes-mapping", _with(("spec", "volumes"), {"data": {}}), "spec.volumes"),
    ("volume-string", _with(("spec", "volumes", 0), "data"), "spec.volumes[0]"),
    ("volume-name-int", _with(("spec", "volumes", 0, "name"), 1), "spec.volumes[0].name"),
    ("security-context-string", _with(("spec", "securityContext"), "root"), "spec.securityContext"),
    ("run-as-user-string", _with(("spec", "securityContext", "runAsUser"), "1000"),
     "spec.securityContext.runAsUser"),
    ("run-as-user-bool", _with(("spec", "securityContext", "runAsUser"), True), "spec.securityContext.runAsUser"),
    ("node-selector-list", _with(("spec", "nodeSelector"), ["linux"]), "spec.nodeSelector"),
    ("node-selector-value-int", _with(("spec", "nodeSelector", "kubernetes.io/os"), 1),
     "spec.nodeSelector[kubernetes.io/os]"),
    ("os-string", _with(("spec", "os"), "linux"), "spec.os"),
    ("os-name-list", _with(("spec", "os", "name"), ["linux"]), "spec.os.name"),
]  # fmt: skip

# Values of every JSON type and then some, to put where the table expects another.
WRONG_VALUES: list[Any] = ["x", 7, 1.5, True, None, ["x"], {"k": "v"}, [{"k": "v"}], [None]]
