"""Pods, policies and their read-back, for the live tests of the operator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

from cluster import kubejson, poll
from cluster.fixtures import GROUP, PLURAL, VERSION

ENABLED = {"libinject.dev/inject": "enabled"}
# An opted-in namespace that enforces Pod Security restricted, and a container context it admits.
RESTRICTED = {**ENABLED, "pod-security.kubernetes.io/enforce": "restricted"}
COMPLIANT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
INJECTED = "libinject.dev/injected"
SKIPPED = "libinject.dev/injection-skipped"
INSTRUMENTED = "libinject.dev/instrumented"

PolicyFactory = Callable[..., str]


def policy(
    name: str, namespaces: list[str], *, libraries: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": name},
        "spec": {"libraries": libraries, "namespaceSelector": {"matchNames": namespaces}, **spec},
    }


def python_policy(name: str, namespaces: list[str], **spec: Any) -> dict[str, Any]:
    """A policy for Python's ddtrace unless `libraries` says otherwise."""
    libraries = spec.pop("libraries", [{"language": "python", "version": "4.16.0"}])
    return policy(name, namespaces, libraries=libraries, **spec)


def app_pod(name: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": annotations},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "example.invalid/app:1",
                    "env": [{"name": "PYTHONPATH", "value": "/srv/app"}],
                    "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}},
                }
            ]
        },
    }


def deployment(name: str, *, replicas: int) -> dict[str, Any]:
    """A Deployment of `app_pod`'s spec, its pods labelled app=<name>."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": app_pod(name)["spec"]},
        },
    }


def create_pod(admin: client.ApiClient, *, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Creates the pod and returns it as stored, after admission."""
    core = client.CoreV1Api(admin)
    core.create_namespaced_pod(namespace, kubejson.body(body))
    return read_pod(admin, namespace=namespace, name=body["metadata"]["name"])


def read_pod(admin: client.ApiClient, *, namespace: str, name: str) -> dict[str, Any]:
    response = client.CoreV1Api(admin).read_namespaced_pod(name, namespace, _preload_content=False)
    return kubejson.json_of(response)


def pod_names(admin: client.ApiClient, namespace: str) -> list[str]:
    pods = client.CoreV1Api(admin).list_namespaced_pod(namespace).items
    return [str(p.metadata.name) for p in pods if p.metadata is not None]


def init_names(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"].get("initContainers") or []]


def env_of(pod: dict[str, Any], container: str) -> dict[str, Any]:
    found = next(c for c in pod["spec"]["containers"] if c["name"] == container)
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in found.get("env") or []}


def policy_status(admin: client.ApiClient, name: str) -> dict[str, Any]:
    obj: Any = client.CustomObjectsApi(admin).get_cluster_custom_object(
        GROUP, VERSION, PLURAL, name
    )  # the client types custom objects as object: they are JSON
    return dict(obj.get("status") or {})


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def events_for(admin: client.ApiClient, name: str) -> list[Any]:
    """The Events about the object `name`, in every namespace, as `kubectl describe` finds them:
    Kopf keeps those of a cluster-scoped object in its own namespace in a pod (the
    ServiceAccount's), in `default` when run from a kubeconfig."""
    listing = client.CoreV1Api(admin).list_event_for_all_namespaces(
        field_selector=f"involvedObject.name={name}"
    )
    return list(listing.items)


def wait_until_injecting(
    admin: client.ApiClient,
    namespace: str,
    timeout: float = 30,
    *,
    probe: dict[str, Any] | None = None,
) -> None:
    """Until the webhook injects pods in `namespace` (pods like `probe`, when the policy selects
    only some): dry-run creates go through admission (our webhook has no side effects) and store
    nothing, so they do not count among the pods."""
    core = client.CoreV1Api(admin)
    body = kubejson.body(probe or app_pod("probe"))

    def injected() -> bool:
        response = core.create_namespaced_pod(
            namespace, body, dry_run="All", _preload_content=False
        )
        labels = kubejson.json_of(response)["metadata"].get("labels") or {}
        return labels.get(INSTRUMENTED) == "true"

    poll.until(injected, what=f"the webhook injecting in {namespace}", timeout=timeout)
