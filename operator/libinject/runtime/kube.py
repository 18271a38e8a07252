"""The one client for the operator's and the CSI plugin's own API calls (Kopf has its own, for
watching): pykube-ng's configuration and authenticated session, in a pod from its ServiceAccount,
elsewhere from the kubeconfig, as Kopf's login does.

Calls take and give plain JSON documents, as the watches do: the full `kubernetes` client (its
model classes and the pydantic it pulls in) cost every replica about 14 MiB of imports for the
handful of calls below.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pykube
import requests
import yaml
from urllib3.util.retry import Retry

# (connect, read) seconds for every call: a hung connection must never hold a reconcile pass,
# the certificate keeper or a CSI Event poster forever.
API_TIMEOUT = (5, 30)
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
UNAUTHORIZED = 401
# The API server answers 429 with a Retry-After when it sheds load (priority and fairness) and
# while a new resource's storage initialises (a CRD just installed): client-go waits and retries,
# and so does this client, a few times; 429 means nothing was done, so any method may be repeated.
THROTTLED = Retry(
    total=4,
    connect=0,
    read=0,
    redirect=0,
    status_forcelist=(429,),
    allowed_methods=None,
    backoff_factor=0.25,
    respect_retry_after_header=True,
    raise_on_status=False,
)


class ApiError(Exception):
    """The API server answered with an error status (`status`), or could not be reached
    (`status` 0); the message says which and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


class KubeconfigError(ValueError):
    """The credentials could not be read: no kubeconfig, or one that is not one."""


class Api:
    """Requests by API path (`/api/v1/namespaces/x/secrets/y`). A 401 reloads the credentials
    once and retries: a pod's ServiceAccount token file is rotated under a long-lived process."""

    def __init__(self, kubeconfig: Path | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._lock = threading.Lock()
        self._http = self._connect()

    @property
    def namespace(self) -> str:
        """The namespace of the configuration's current context ("default" when it names
        none), as kubectl takes it when told no namespace."""
        namespace: str = self._http.config.namespace
        return namespace

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body=body)

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", path, body=body)

    def patch(self, path: str, patch: Any, *, content_type: str = MERGE_PATCH) -> dict[str, Any]:
        return self.request("PATCH", path, body=patch, content_type=content_type)

    def request(
        self, method: str, path: str, *, body: Any = None, content_type: str = JSON
    ) -> dict[str, Any]:
        response = self._send(method, path, body=body, content_type=content_type)
        if response.status_code == UNAUTHORIZED:
            with self._lock:
                self._http = self._connect()
            response = self._send(method, path, body=body, content_type=content_type)
        if not response.ok:
            raise ApiError(response.status_code, _reason(response))
        document: dict[str, Any] = response.json()
        return document

    def _send(self, method: str, path: str, *, body: Any, content_type: str) -> requests.Response:
        data = None if body is None else json.dumps(body)
        session: requests.Session = self._http.session  # pykube-ng ships no type information
        try:
            return session.request(
                method,
                self._http.url + path,
                data=data,
                headers={"Content-Type": content_type, "Accept": JSON},
                timeout=API_TIMEOUT,
            )
        except requests.RequestException as error:
            raise ApiError(0, f"{method} {path}: {error}") from None

    def _connect(self) -> pykube.HTTPClient:
        where = str(self._kubeconfig or "the ServiceAccount, $KUBECONFIG or ~/.kube/config")
        try:
            if self._kubeconfig is not None:
                config = pykube.KubeConfig.from_file(str(self._kubeconfig))
            else:
                config = pykube.KubeConfig.from_env()  # the ServiceAccount, else $KUBECONFIG
            adapter = pykube.http.KubernetesHTTPAdapter(config, max_retries=THROTTLED)
            return pykube.HTTPClient(config, http_adapter=adapter)
        # pykube-ng reads the file as it comes: a missing one, bad YAML or a missing section
        # would otherwise surface as a traceback about its internals.
        except KeyError as error:
            raise KubeconfigError(f"no usable kubeconfig in {where}: it has no {error}") from None
        except (pykube.exceptions.PyKubeError, yaml.YAMLError, TypeError) as error:
            reason = " ".join(str(error).split())
            raise KubeconfigError(f"no usable kubeconfig in {where}: {reason}") from None


def server_version(api: Api) -> str:
    """The API server's gitVersion (v1.36.3); raises `ApiError` with the reason."""
    return str(api.get("/version")["gitVersion"])


def _reason(response: requests.Response) -> str:
    """The API server's own message (a Status document), else the start of what it sent."""
    try:
        status = response.json()
    except ValueError:
        return f"{response.reason}: {response.text[:300]}"
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return str(response.reason)
