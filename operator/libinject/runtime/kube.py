"""The one place the operator builds a `kubernetes` API client (Kopf has its own, for watching):
in a pod, from its ServiceAccount; elsewhere, from the kubeconfig, as Kopf's login does."""

from __future__ import annotations

import os

from kubernetes import client, config


def api_client() -> client.ApiClient:
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()
