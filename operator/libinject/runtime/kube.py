"""The one place the operator builds a `kubernetes` API client (Kopf has its own, for watching):
in a pod, from its ServiceAccount; elsewhere, from the kubeconfig, as Kopf's login does."""

from __future__ import annotations

import os

from kubernetes import client, config

# (connect, read) seconds for every call the operator makes with this client: a hung connection
# must never hold a reconcile pass or the certificate keeper forever.
API_TIMEOUT = (5, 30)


def api_client() -> client.ApiClient:
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()
