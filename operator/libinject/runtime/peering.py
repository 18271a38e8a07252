"""The ClusterKopfPeering through which replicas elect one active reconciler.

Kopf only patches the peering object and waits, paused, until it exists; and a peering object in
the same `kubectl apply -k` as its CRD is refused (the apply maps every kind before the CRD is
served). So the operator makes sure it exists on start: install stays one command.
"""

from __future__ import annotations

from libinject.runtime import kube, logs

GROUP, VERSION, PLURAL, KIND = "kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering"
log = logs.get(__name__)


def ensure(api: kube.Api, name: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "libinject"}},
    }
    try:
        api.create(f"/apis/{GROUP}/{VERSION}/{PLURAL}", body)
        log.info("peering object created", name=name)
    except kube.ApiError as error:
        if error.status != 409:  # 409: it exists, made by another replica or an earlier run
            raise
