"""The operator's RBAC (manifests/base/rbac.yaml) is enough and no more: real calls made with the
operator ServiceAccount's token succeed for everything the operator does and get 403 for the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from cluster import kubejson
from cluster.fixtures import GROUP, OPERATOR_NAMESPACE, PLURAL, VERSION
from cluster.kubectl import Kubectl
from libinject.runtime import csikey, kube
from libinject.runtime.config import RuntimeSettings

POLICY, WEBHOOK, TLS_SECRET = "rbac-probe", "libinject", "libinject-webhook-tls"


@dataclass(frozen=True)
class World:
    """Objects the calls act on, made by the admin for this module, and the operator's own client
    (runtime.kube) with the same token, for the calls the operator makes through its modules."""

    namespace: str
    operator_api: kube.Api


Call = Callable[[client.ApiClient, World], Any]


def _status_patch(api: client.ApiClient, _: World) -> Any:
    body = {"status": {"observedGeneration": 1}}
    return client.CustomObjectsApi(api).patch_cluster_custom_object_status(
        GROUP, VERSION, PLURAL, POLICY, body
    )


def _event(api: client.ApiClient, world: World) -> Any:
    body = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="libinject-"),
        involved_object=client.V1ObjectReference(kind="Pod", name="web", namespace=world.namespace),
        reason="Probe",
        message="rbac probe",
        type="Normal",
    )
    return client.CoreV1Api(api).create_namespaced_event(world.namespace, body)


def _tls_secret(api: client.ApiClient, _: World) -> Any:
    core = client.CoreV1Api(api)
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=TLS_SECRET), string_data={"ca.crt": "x"}
    )
    try:
        core.create_namespaced_secret(OPERATOR_NAMESPACE, body)
    except ApiException as error:
        if error.status != 409:  # a second run of the same session: already there
            raise
    secret = core.read_namespaced_secret(TLS_SECRET, OPERATOR_NAMESPACE)
    return core.replace_namespaced_secret(TLS_SECRET, OPERATOR_NAMESPACE, secret)


def _csi_key(_: client.ApiClient, world: World) -> Any:
    """What the operator does at start: read the CSI signing key, making it first if absent."""
    return csikey.ensure(
        world.operator_api, namespace=OPERATOR_NAMESPACE, name=RuntimeSettings().csi_key_secret
    )


def _label_patch(name: str) -> Call:
    def call(api: client.ApiClient, _: World) -> Any:
        body = {"metadata": {"labels": {"probe": "yes"}}}
        return client.AdmissionregistrationV1Api(api).patch_mutating_webhook_configuration(
            name, body
        )

    return call


PEERING = ("kopf.dev", "v1", "clusterkopfpeerings")


def _keepalive(api: client.ApiClient, _: World) -> Any:
    """What Kopf's peering.touch() sends. The operator creates the object on start, so here it
    may be absent: a 404 still proves RBAC let the call through, since the API server authorizes
    a request before it looks the object up."""
    body = {"status": {"rbac-probe": None}}
    try:
        return client.CustomObjectsApi(api).patch_cluster_custom_object(*PEERING, "libinject", body)
    except ApiException as error:
        if error.status != 404:
            raise
        return None


def _list_peerings(api: client.ApiClient, _: World) -> Any:
    return client.CustomObjectsApi(api).list_cluster_custom_object(*PEERING)


def _create_peering(api: client.ApiClient, _: World) -> Any:
    """What runtime/peering.ensure() sends on start; a 409 (made already) is authorized too."""
    body = {
        "apiVersion": "kopf.dev/v1",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": "libinject"},
    }
    try:
        return client.CustomObjectsApi(api).create_cluster_custom_object(*PEERING, body)
    except ApiException as error:
        if error.status != 409:
            raise
        return None


ALLOWED: dict[str, Call] = {
    "watch policies": lambda api, _: client.CustomObjectsApi(api).list_cluster_custom_object(
        GROUP, VERSION, PLURAL
    ),
    "write a policy's status": _status_patch,
    "watch namespaces": lambda api, _: client.CoreV1Api(api).list_namespace(),
    "watch pods (the policies' coverage counts)": lambda api, _: client.CoreV1Api(
        api
    ).list_pod_for_all_namespaces(),
    "post an event": _event,
    "keep its serving certificate": _tls_secret,
    "read (or make) its CSI signing key": _csi_key,
    "patch its own webhook configuration": _label_patch(WEBHOOK),
    "watch the peering objects (Kopf peering)": _list_peerings,
    "keep-alive in its peering object": _keepalive,
    "create its peering object": _create_peering,
    "watch CSI drivers (what `auto` means)": lambda api, _: client.StorageV1Api(
        api
    ).list_csi_driver(),
    "watch nodes (whether `auto` may mean image volumes)": lambda api, _: client.CoreV1Api(
        api
    ).list_node(),
    "read the API server's version": lambda api, _: client.VersionApi(api).get_code(),
}

DENIED: dict[str, Call] = {
    # The policies are read-only to the operator but for their status.
    "change a policy's spec": lambda api, _: client.CustomObjectsApi(api).patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, POLICY, {"metadata": {"annotations": {"probe": "1"}}}
    ),
    "read a Secret elsewhere": lambda api, w: client.CoreV1Api(api).list_namespaced_secret(w.namespace),
    "read a kube-system Secret": lambda api, _: client.CoreV1Api(api).read_namespaced_secret("any", "kube-system"),
    "list Secrets in its own namespace": lambda api, _: client.CoreV1Api(api).list_namespaced_secret(OPERATOR_NAMESPACE),
    "read another Secret in its own namespace": lambda api, _: client.CoreV1Api(api).read_namespaced_secret("other", OPERATOR_NAMESPACE),
    "create pods": lambda api, w: client.CoreV1Api(api).create_namespaced_pod(
        w.namespace, kubejson.body({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a", "image": "a"}]}})
    ),
    "delete a policy": lambda api, _: client.CustomObjectsApi(api).delete_cluster_custom_object(GROUP, VERSION, PLURAL, POLICY),
    "relabel a namespace": lambda api, w: client.CoreV1Api(api).patch_namespace(
        w.namespace, {"metadata": {"labels": {"libinject.dev/inject": "enabled"}}}
    ),
    "patch another webhook configuration": _label_patch("someone-else"),
    "read a pod's logs": lambda api, w: client.CoreV1Api(api).read_namespaced_pod_log("x", w.namespace),
    "change a pod": lambda api, w: client.CoreV1Api(api).patch_namespaced_pod(
        "x", w.namespace, {"metadata": {"labels": {"probe": "yes"}}}
    ),
    "change a node": lambda api, _: client.CoreV1Api(api).patch_node(
        "kwok-node-0", {"metadata": {"labels": {"probe": "yes"}}}
    ),
    "grant itself more": lambda api, _: client.RbacAuthorizationV1Api(api).create_cluster_role_binding(
        kubejson.body({"metadata": {"name": "escalate"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": "libinject-operator", "namespace": OPERATOR_NAMESPACE}]})
    ),
    "keep-alive in another operator's peering": lambda api, _: client.CustomObjectsApi(api).patch_cluster_custom_object(
        *PEERING, "default", {"status": {"rbac-probe": None}}
    ),
    "delete its peering object": lambda api, _: client.CustomObjectsApi(api).delete_cluster_custom_object(*PEERING, "libinject"),
    "read CRDs (Kopf's scanning is off)": lambda api, _: client.ApiextensionsV1Api(api).list_custom_resource_definition(),
    "change a CRD": lambda api, _: client.ApiextensionsV1Api(api).patch_custom_resource_definition(
        "instrumentationpolicies.libinject.dev", {"metadata": {"labels": {"probe": "yes"}}}
    ),
    # Rolling workloads out needs the opt-in component (tests/live/test_rollout.py grants it).
    "list Deployments without the rollout component": lambda api, w: client.AppsV1Api(api).list_namespaced_deployment(w.namespace),
    "patch a Deployment without the rollout component": lambda api, w: client.AppsV1Api(api).patch_namespaced_deployment(
        "any", w.namespace, {"metadata": {"labels": {"probe": "yes"}}}
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def world(admin: client.ApiClient, operator_api: kube.Api, installed: None) -> Iterator[World]:
    """A policy and two webhook configurations to act on, and a namespace with a Secret."""
    core, hooks = client.CoreV1Api(admin), client.AdmissionregistrationV1Api(admin)
    policies = client.CustomObjectsApi(admin)
    created = core.create_namespace(kubejson.body({"metadata": {"generateName": "rbac-"}}))
    assert created.metadata is not None
    namespace = str(created.metadata.name)
    core.create_namespaced_secret(
        namespace, kubejson.body({"metadata": {"name": "app-db"}, "stringData": {"password": "x"}})
    )
    policy: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": POLICY},
        "spec": {"libraries": [{"language": "python", "version": "4.16.0"}]},
    }
    policies.create_cluster_custom_object(GROUP, VERSION, PLURAL, policy)
    # Ours (WEBHOOK) comes with the manifests; another one is made here.
    hooks.create_mutating_webhook_configuration(
        kubejson.body({"metadata": {"name": "someone-else"}, "webhooks": []})
    )
    yield World(namespace=namespace, operator_api=operator_api)
    hooks.delete_mutating_webhook_configuration("someone-else")
    policies.delete_cluster_custom_object(GROUP, VERSION, PLURAL, POLICY)
    core.delete_namespace(namespace)


@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_operator_may(action: str, operator: client.ApiClient, world: World) -> None:
    ALLOWED[action](operator, world)


@pytest.mark.parametrize("action", sorted(DENIED))
def test_operator_may_not(action: str, operator: client.ApiClient, world: World) -> None:
    with pytest.raises(ApiException) as refused:
        DENIED[action](operator, world)
    assert refused.value.status == 403, refused.value.body
    assert "system:serviceaccount:libinject-system:libinject-operator" in str(refused.value.body)


def test_the_operator_kubeconfig_is_the_service_account(operator_kubectl: Kubectl) -> None:
    """The kubeconfig the operator process will run with authenticates as its ServiceAccount."""
    review = json.loads(operator_kubectl("auth", "whoami", "-o", "json").stdout)
    assert review["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{OPERATOR_NAMESPACE}:libinject-operator"
    )


def test_the_denials_are_not_for_want_of_objects(admin: client.ApiClient, world: World) -> None:
    """Control: the admin can do what the operator was refused, so the 403s above are RBAC's."""
    client.CoreV1Api(admin).list_namespaced_secret(world.namespace)
    client.CoreV1Api(admin).list_namespaced_pod(world.namespace)
    _label_patch("someone-else")(admin, world)
