"""The one place the operator builds a `kubernetes` API client (Kopf has its own, for watching):
in a pod, from its ServiceAccount; elsewhere, from the kubeconfig, as Kopf's login does."""

from __future__ import annotations

import os

import urllib3
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


def server_version(api: client.ApiClient) -> str:
    """The API server's gitVersion (v1.36.3); raises `ApiUnreachableError` with the reason."""
    try:
        info = client.VersionApi(api).get_code(_request_timeout=API_TIMEOUT)
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as error:
        raise ApiUnreachableError(str(error)) from None
    return str(info.git_version)


class ApiUnreachableError(Exception):
    """A call to the API server failed; the message says how."""
