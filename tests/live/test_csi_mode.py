"""`auto` follows the cluster: the webhook injects the CSI volume while the libinject CSIDriver
object exists, and the copy container when it does not, with no operator restart. The volume is
signed with the key the operator keeps in its Secret, for the pod's namespace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from cluster import kubejson, poll
from cluster.fixtures import OPERATOR_NAMESPACE, NamespaceFactory
from cluster.workloads import ENABLED, INJECTED, PolicyFactory, app_pod, python_policy
from libinject.engine import signature
from libinject.runtime import csikey, kube
from libinject.runtime.config import RuntimeSettings

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]
DRIVER = "csi.libinject.dev"


@pytest.fixture
def csi_driver(admin: client.ApiClient) -> Iterator[None]:
    """The driver's CSIDriver object, as its manifests register it; removed afterwards (other
    tests expect `auto` to mean the copy container)."""
    storage = client.StorageV1Api(admin)
    body = {
        "metadata": {"name": DRIVER},
        "spec": {
            "podInfoOnMount": True,
            "volumeLifecycleModes": ["Ephemeral"],
            "attachRequired": False,
        },
    }
    storage.create_csi_driver(kubejson.body(body))
    try:
        yield
    finally:
        try:
            storage.delete_csi_driver(DRIVER)
        except ApiException as error:
            if error.status != 404:  # the test may have deleted it already
                raise


def _library_volume(admin: client.ApiClient, namespace: str) -> dict[str, Any]:
    """The library volume the webhook gives a new pod now ({} when none; a dry-run create)."""
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(app_pod("probe")), dry_run="All", _preload_content=False
    )
    volumes = kubejson.json_of(response)["spec"].get("volumes") or []
    return next((v for v in volumes if v["name"] == "libinject-python"), {})


def _volume_kind(admin: client.ApiClient, namespace: str) -> str:
    """What the webhook gives a new pod now: 'csi' or 'emptyDir'."""
    volume = _library_volume(admin, namespace)
    return next((kind for kind in ("csi", "emptyDir") if kind in volume), "none")


def test_auto_switches_to_csi_when_the_driver_is_registered_and_back(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    csi_driver: None,
) -> None:
    """The operator watches CSIDriver objects: with ours present an `auto` policy's pods get the
    CSI inline volume; once it is deleted, new pods get the emptyDir and copy container again."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("auto-mode", [namespace]))
    poll.until(lambda: _volume_kind(admin, namespace) == "csi", what="the CSI volume", timeout=30)
    client.StorageV1Api(admin).delete_csi_driver(DRIVER)
    poll.until(
        lambda: _volume_kind(admin, namespace) == "emptyDir", what="the emptyDir", timeout=30
    )
    client.StorageV1Api(admin).create_csi_driver(
        kubejson.body(
            {"metadata": {"name": DRIVER}, "spec": {"volumeLifecycleModes": ["Ephemeral"]}}
        )
    )


def test_auto_copies_an_image_the_plugin_would_not_pull_and_says_why(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    csi_driver: None,
) -> None:
    """With the driver registered, a policy whose own image is outside the operator's registry
    (the plugin's only allowed repository, which would publish it empty) still gets its library
    into pods: `auto` means the copy container for it, and the pod's record says why."""
    namespace = namespaces(labels=ENABLED)
    image = "mirror.example/apm/python-ddtrace:4.16.0"
    libraries = [{"language": "python", "version": "4.16.0", "image": image}]
    policies(python_policy("mirror", [namespace], libraries=libraries))
    poll.until(
        lambda: _volume_kind(admin, namespace) == "emptyDir", what="the emptyDir", timeout=30
    )
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(app_pod("probe")), dry_run="All", _preload_content=False
    )
    pod = kubejson.json_of(response)
    (record,) = json.loads(pod["metadata"]["annotations"][INJECTED])
    assert record["mode"] == "init-container"
    assert record["modeReason"].startswith(f"the CSI driver {DRIVER} is registered, but")
    assert f"{image} is not there: init-container" in record["modeReason"]


def test_the_csi_volume_is_signed_for_its_namespace(
    admin: client.ApiClient,
    admin_api: kube.Api,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
) -> None:
    """The webhook signs each CSI volume with the key in the operator's Secret, for the pod's
    namespace, image and language (what the plugin checks against the namespace the kubelet
    names): the signature verifies for that namespace only."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("signed", [namespace], injection={"mode": "csi"}))
    attributes = poll.until(
        lambda: _library_volume(admin, namespace).get("csi", {}).get("volumeAttributes"),
        what="the CSI volume",
        timeout=30,
    )
    key = csikey.ensure(
        admin_api,
        namespace=OPERATOR_NAMESPACE,
        name=RuntimeSettings().csi_key_secret,
    )
    fields = {"image": attributes["image"], "language": attributes["language"]}
    token = attributes[signature.ATTRIBUTE]
    assert signature.verify(key, token, namespace=namespace, **fields)
    assert not signature.verify(key, token, namespace=f"{namespace}-other", **fields)


def test_the_key_secret_is_made_once_and_never_replaced(
    admin: client.ApiClient, admin_api: kube.Api, namespaces: NamespaceFactory
) -> None:
    """`ensure` makes the Secret when absent and returns the same key after; a Secret holding no
    usable key is an error naming the repair, never silently replaced (the plugins would refuse
    every volume signed before)."""
    core = client.CoreV1Api(admin)
    namespace = namespaces()
    key = csikey.ensure(admin_api, namespace=namespace, name="csi-key")
    assert len(key) == 2 * signature.KEY_BYTES
    assert csikey.ensure(admin_api, namespace=namespace, name="csi-key") == key
    core.create_namespaced_secret(
        namespace, kubejson.body({"metadata": {"name": "broken"}, "stringData": {"key": "short"}})
    )
    with pytest.raises(csikey.UnusableKeyError, match="delete the Secret"):
        csikey.ensure(admin_api, namespace=namespace, name="broken")
