"""`auto` means image volumes where the CSI driver is absent and every node mounts them: the
operator reads the API server's version and watches the nodes' kubelet and runtime versions,
with no restart, and each pod's record says why its mode was chosen."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from cluster import kubejson, poll
from cluster.fixtures import NamespaceFactory
from cluster.workloads import ENABLED, PolicyFactory, app_pod, python_policy

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]
MOUNTING_RUNTIME = "containerd://2.2.0"  # image volumes with a subPath
OLD_NODE = "libinject-old-runtime"


def _node_info(api: client.CoreV1Api, name: str) -> dict[str, str]:
    node = kubejson.json_of(api.read_node_status(name, _preload_content=False))
    return dict(node["status"]["nodeInfo"])


def _set_versions(api: client.CoreV1Api, name: str, *, kubelet: str, runtime: str) -> None:
    info = {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime}
    api.patch_node_status(name, {"status": {"nodeInfo": info}})


@pytest.fixture
def mounting_nodes(admin: client.ApiClient) -> Iterator[str]:
    """Every node reports this API server's kubelet version and a runtime that mounts image
    volumes, as a current cluster's would (kwok keeps what the status says); put back after,
    since other tests expect `auto` to mean the copy container. Yields the server's version."""
    core = client.CoreV1Api(admin)
    version = str(client.VersionApi(admin).get_code().git_version)
    listed = kubejson.json_of(core.list_node(_preload_content=False))["items"]
    names = [str(node["metadata"]["name"]) for node in listed]
    before = {name: _node_info(core, name) for name in names}
    for name in before:
        _set_versions(core, name, kubelet=version, runtime=MOUNTING_RUNTIME)
    try:
        yield version
    finally:
        for name, info in before.items():
            kubelet, runtime = info["kubeletVersion"], info["containerRuntimeVersion"]
            _set_versions(core, name, kubelet=kubelet, runtime=runtime)


def _admitted(admin: client.ApiClient, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The library volume a new pod gets now ({} when none) and its libinject.dev/injected
    record (a dry-run create through the webhook)."""
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(app_pod("probe")), dry_run="All", _preload_content=False
    )
    pod = kubejson.json_of(response)
    volumes = pod["spec"].get("volumes") or []
    volume: dict[str, Any] = next((v for v in volumes if v["name"] == "libinject-python"), {})
    records = json.loads(
        (pod["metadata"].get("annotations") or {}).get("libinject.dev/injected", "[{}]")
    )
    return volume, records[0]


def _kind(admin: client.ApiClient, namespace: str) -> str:
    volume, _ = _admitted(admin, namespace)
    return next((kind for kind in ("image", "csi", "emptyDir") if kind in volume), "none")


def test_auto_is_an_image_volume_while_every_node_mounts_them(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    mounting_nodes: str,
) -> None:
    """With every node able, an `auto` policy's pods get the library image as a volume (no copy
    container) and say why; a node joining with an older runtime turns new pods back to the copy
    container, naming that node; once it leaves, image volumes again."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("auto-image", [namespace]))
    poll.until(lambda: _kind(admin, namespace) == "image", what="the image volume", timeout=30)
    volume, record = _admitted(admin, namespace)
    assert volume["image"]["reference"] == "localhost:5000/libinject/python-ddtrace:4.16.0"
    assert record["mode"] == "image-volume"
    assert record["modeReason"] == (
        f"no CSI driver; image volumes: the API server is {mounting_nodes} and every node mounts "
        "them"
    )

    core = client.CoreV1Api(admin)
    core.create_node(kubejson.body({"metadata": {"name": OLD_NODE}}))
    try:
        _set_versions(core, OLD_NODE, kubelet=mounting_nodes, runtime="containerd://1.7.27")
        poll.until(lambda: _kind(admin, namespace) == "emptyDir", what="the copy", timeout=30)
        _, record = _admitted(admin, namespace)
        assert record["mode"] == "init-container"
        assert record["modeReason"] == (
            f"no CSI driver; no image volumes: node {OLD_NODE}: container runtime "
            "containerd://1.7.27, not containerd 2.2+ or cri-o 1.33+; the default mode"
        )
    finally:
        core.delete_node(OLD_NODE)
    poll.until(lambda: _kind(admin, namespace) == "image", what="image volumes again", timeout=30)


def test_without_versions_auto_stays_the_copy(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """The local cluster's fake nodes report kwok's own versions, which show no image volume
    support: `auto` is the operator's default mode, and the record names the node."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("auto-copy", [namespace]))
    poll.until(lambda: _kind(admin, namespace) == "emptyDir", what="the copy", timeout=30)
    _, record = _admitted(admin, namespace)
    assert record["modeReason"].startswith("no CSI driver; no image volumes: node ")
    assert "kubelet kwok-" in record["modeReason"]
