"""`auto` follows the cluster: the webhook injects the CSI volume while the libinject CSIDriver
object exists, and the copy container when it does not, with no operator restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from cluster import kubejson, poll
from cluster.fixtures import NamespaceFactory
from cluster.workloads import ENABLED, PolicyFactory, app_pod, python_policy

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


def _volume_kind(admin: client.ApiClient, namespace: str) -> str:
    """What the webhook gives a new pod now: 'csi' or 'emptyDir' (a dry-run create)."""
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(app_pod("probe")), dry_run="All", _preload_content=False
    )
    volumes = kubejson.json_of(response)["spec"].get("volumes") or []
    ours = [v for v in volumes if v["name"] == "libinject-python"]
    return next((kind for kind in ("csi", "emptyDir") if ours and kind in ours[0]), "none")


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
