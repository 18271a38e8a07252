"""An empty volume is reported: the log, Prometheus metrics scraped over HTTP from the real
plugin, and (live) a Warning Event on the pod, posted to a real API server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from kubernetes import client

from cluster import harness, poll
from cluster.libraries import ImageFactory
from cluster.registry import Registry
from csi.plugin import UNREACHABLE, Plugin, running_plugin, scrape, signed, target_of
from libinject.csi import events
from libinject.csi.publications import Publication

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")

POD_ATTRIBUTES = {
    events.POD_NAME: "payments-api-0",
    events.POD_NAMESPACE: "shop",
    events.POD_UID: "0b8f6a59-5a57-4a43-9d6b-7d0e3c1f5a11",
}


def test_pod_of_needs_all_three_keys() -> None:
    assert events.pod_of(POD_ATTRIBUTES) == events.Pod(
        "payments-api-0", "shop", "0b8f6a59-5a57-4a43-9d6b-7d0e3c1f5a11"
    )
    assert events.pod_of({**POD_ATTRIBUTES, events.POD_UID: ""}) is None
    assert events.pod_of({"image": "x"}) is None


def test_event_body() -> None:
    """events.k8s.io/v1: a Warning LibraryNotReady regarding the pod, reported by the driver's
    name, its eventTime a MicroTime with six fractional digits even on a whole second."""
    publication = Publication(
        "csi-1", "/pods/x", "reg/libinject/python-ddtrace:4", "empty", "crane manifest: refused"
    )
    pod = events.pod_of(POD_ATTRIBUTES)
    assert pod is not None
    body = events.event_body(
        pod,
        reason=events.REASON,
        note=events.empty_note(publication),
        node_id="node-1",
        now=datetime(2026, 1, 2, tzinfo=UTC),
    )
    assert body["eventTime"] == "2026-01-02T00:00:00.000000Z"
    assert body["type"] == "Warning"
    assert body["reason"] == "LibraryNotReady"
    assert body["reportingController"] == "csi.libinject.dev"
    assert body["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": pod.name,
        "namespace": pod.namespace,
        "uid": pod.uid,
    }
    assert body["metadata"]["namespace"] == "shop"
    assert body["metadata"]["name"].startswith("payments-api-0.")
    assert "reg/libinject/python-ddtrace:4" in body["note"]
    assert "crane manifest: refused" in body["note"]


@root_only
def test_metrics_of_an_empty_and_a_library_publish(
    metered: Plugin, metrics_port: int, library_images: ImageFactory
) -> None:
    """Scraped over HTTP: one empty volume counted with reason pull_error (the registry refuses
    connections), one publish timed per outcome, one image in the cache; the kubelet's pod keys
    are accepted in the volume context."""
    down = target_of(metered, "pod-down")
    image = f"{UNREACHABLE}/python-ddtrace:4.16.0"
    metered.publish("csi-down", down, {**signed(image), **POD_ATTRIBUTES})
    up = target_of(metered, "pod-up")
    metered.publish("csi-up", up, signed(library_images("ddtrace")))

    samples = scrape(metrics_port)
    assert samples[("libinject_csi_empty_volumes_total", (("reason", "pull_error"),))] == 1
    assert samples[("libinject_csi_publish_seconds_count", (("outcome", "empty"),))] == 1
    assert samples[("libinject_csi_publish_seconds_count", (("outcome", "library"),))] == 1
    assert samples[("libinject_csi_cache_images", ())] == 1
    assert "shop/payments-api-0" in metered.log()


@pytest.fixture
def reporting(
    tmp_path: Path, registry: Registry, crane: Path, control_plane: harness.ControlPlane
) -> Iterator[Plugin]:
    with running_plugin(
        tmp_path, registry, crane, f"--kubeconfig={control_plane.kubeconfig}"
    ) as plugin:
        yield plugin


def real_pod(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    """A pod stored by the API server, for Events to regard."""
    return core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="app:1")]),
        ),
    )


@root_only
@pytest.mark.live
def test_event_on_the_pod_of_an_empty_volume(
    reporting: Plugin, admin: client.ApiClient, namespace: str
) -> None:
    """The registry unreachable: the volume of a real pod is published empty, and a Warning
    LibraryNotReady Event regarding that pod, reported by csi.libinject.dev, reaches the API
    server (the publish did not wait for it)."""
    core = client.CoreV1Api(admin)
    pod = real_pod(core, namespace, "payments-api")
    image = f"{UNREACHABLE}/python-ddtrace:4.16.0"
    assert pod.metadata is not None
    uid = str(pod.metadata.uid)
    attributes = {
        **signed(image, namespace=namespace),
        events.POD_NAME: str(pod.metadata.name),
        events.POD_NAMESPACE: namespace,
        events.POD_UID: uid,
    }
    reporting.publish("csi-event", target_of(reporting, "pod-event"), attributes)

    def posted() -> list[client.CoreV1Event]:
        found = core.list_namespaced_event(namespace).items
        return [event for event in found if event.reason == "LibraryNotReady"]

    found = poll.until(posted, what="the LibraryNotReady event", timeout=30, interval=0.2)
    assert len(found) == 1
    event = found[0]
    assert event.type == "Warning"
    assert event.involved_object.kind == "Pod"
    assert event.involved_object.name == "payments-api"
    assert event.involved_object.uid == uid
    assert event.reporting_component == "csi.libinject.dev"
    assert image in str(event.message)
    v1 = client.EventsV1Api(admin).list_namespaced_event(namespace).items
    assert [e.reporting_controller for e in v1 if e.reason == "LibraryNotReady"] == [
        "csi.libinject.dev"
    ]


@root_only
@pytest.mark.live
def test_event_on_the_pod_of_a_refused_volume(
    reporting: Plugin, admin: client.ApiClient, namespace: str, library_images: ImageFactory
) -> None:
    """A real pod naming the driver itself (no webhook wrote its volume, so no signature): the
    publish is PERMISSION_DENIED and a Warning LibraryVolumeRefused Event regarding that pod says
    why, so its owner sees it in `kubectl describe pod`."""
    core = client.CoreV1Api(admin)
    pod = real_pod(core, namespace, "hand-written")
    assert pod.metadata is not None
    attributes = {
        "image": library_images("ddtrace"),
        "language": "python",
        events.POD_NAME: str(pod.metadata.name),
        events.POD_NAMESPACE: namespace,
        events.POD_UID: str(pod.metadata.uid),
    }
    with pytest.raises(grpc.RpcError) as refused:
        reporting.publish("csi-refused", target_of(reporting, "pod-refused"), attributes)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED

    def posted() -> list[client.CoreV1Event]:
        found = core.list_namespaced_event(namespace).items
        return [event for event in found if event.reason == "LibraryVolumeRefused"]

    (event,) = poll.until(posted, what="the LibraryVolumeRefused event", timeout=30, interval=0.2)
    assert event.type == "Warning"
    assert event.involved_object.uid == pod.metadata.uid
    assert "no signature" in str(event.message)
