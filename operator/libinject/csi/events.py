"""Kubernetes Events on the pod whose volume was published empty, or refused (events.k8s.io/v1).

The kubelet passes the pod in the volume context when the CSIDriver asks for it
(`podInfoOnMount: true`). Events are posted by one background thread from a bounded queue, so a
publish never waits on the API server; a post that fails is logged and dropped, never raised,
and when the queue is full (the API server unreachable for long) new events are dropped too.
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from libinject.csi.publications import Publication
from libinject.runtime import kube, logs

POD_NAME = "csi.storage.k8s.io/pod.name"
POD_NAMESPACE = "csi.storage.k8s.io/pod.namespace"
POD_UID = "csi.storage.k8s.io/pod.uid"
REPORTING_CONTROLLER = "csi.libinject.dev"
REASON = "LibraryNotReady"  # the volume was published empty
REFUSED = "LibraryVolumeRefused"  # the publish was refused (not our webhook's volume, ...)
ACTION = "PublishVolume"
QUEUE_SIZE = 1000
MAX_NOTE = 1024  # events.k8s.io/v1 refuses a longer note

_log = logs.get("libinject.csi.events")


class ConfigError(RuntimeError):
    """No Kubernetes client configuration could be loaded."""


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    uid: str


def pod_of(volume_context: Mapping[str, str]) -> Pod | None:
    """The pod the kubelet named in the volume context, if it named one (all three keys)."""
    name = volume_context.get(POD_NAME, "")
    namespace = volume_context.get(POD_NAMESPACE, "")
    uid = volume_context.get(POD_UID, "")
    if not (name and namespace and uid) or max(len(name), len(namespace), len(uid)) > 253:
        return None
    return Pod(name=name, namespace=namespace, uid=uid)


def api_client(kubeconfig: Path | None) -> kube.Api:
    """A client from `kubeconfig`, else in-cluster (never a kubeconfig found by chance on the
    node); ConfigError when neither."""
    if kubeconfig is None and "KUBERNETES_SERVICE_HOST" not in os.environ:
        raise ConfigError("no --kubeconfig and not in a cluster")
    try:
        return kube.Api(kubeconfig)
    except Exception as error:  # the loaders raise PyKubeError, OSError, KeyError, YAMLError...
        raise ConfigError(f"no Kubernetes client configuration: {error}") from error


def empty_note(publication: Publication) -> str:
    return (
        f"library {publication.reference} not ready: volume {publication.volume_id} was "
        f"published empty, the pod runs uninstrumented ({publication.reason})"
    )


def refused_note(volume_id: str, why: str) -> str:
    return f"the libinject CSI plugin refused volume {volume_id[:128]}: {why}"


def event_body(pod: Pod, *, reason: str, note: str, node_id: str, now: datetime) -> dict[str, Any]:
    """The events.k8s.io/v1 Warning Event `reason` regarding `pod`."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": f"{pod.name}.{secrets.token_hex(8)}"[-253:].lstrip("."),
            "namespace": pod.namespace,
        },
        # MicroTime wants exactly six fractional digits (isoformat drops them at .000000).
        "eventTime": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "type": "Warning",
        "reason": reason,
        "action": ACTION,
        "note": note[:MAX_NOTE],
        "regarding": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
        },
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": f"{REPORTING_CONTROLLER}/{node_id}"[:128],
    }


class EventPoster:
    """Posts Events from a queue in a background thread (start it once)."""

    def __init__(self, api: kube.Api, *, node_id: str) -> None:
        self._api = api
        self._node_id = node_id
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread = threading.Thread(target=self._loop, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def report(self, publication: Publication, pod: Pod | None) -> None:
        """Queues the Event of an empty volume (none when the kubelet named no pod)."""
        if pod is not None:
            self._queue_event(pod, reason=REASON, note=empty_note(publication))

    def refused(self, volume_id: str, why: str, pod: Pod | None) -> None:
        """Queues the Event of a refused publish (none when the kubelet named no pod)."""
        if pod is not None:
            self._queue_event(pod, reason=REFUSED, note=refused_note(volume_id, why))

    def _queue_event(self, pod: Pod, *, reason: str, note: str) -> None:
        body = event_body(
            pod, reason=reason, note=note, node_id=self._node_id, now=datetime.now(UTC)
        )
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            _log.warning("event dropped: queue full", pod=pod.name, namespace=pod.namespace)

    def _loop(self) -> None:
        while True:
            body = self._queue.get()
            namespace = body["metadata"]["namespace"]
            try:
                self._api.create(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body)
            except Exception as error:  # never raised: the pod runs either way
                _log.warning(
                    "event not posted",
                    pod=body["regarding"]["name"],
                    namespace=namespace,
                    error=str(error)[:500],
                )
            else:
                _log.info("event posted", pod=body["regarding"]["name"], namespace=namespace)
