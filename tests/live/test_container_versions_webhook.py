"""Per-container versions (libinject.dev/<container>.<language>.version) through the webhook on
the real control plane: a granted request gets its container a copy of its own version beside
the pod's, which the API server stores as it is (a server-side dry run in a namespace that
enforces restricted: both copy containers pass Pod Security); a refused one keeps the pod's
version, and the record says which container got what."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from cluster import kubejson
from cluster.fixtures import NamespaceFactory
from cluster.libraries import DDTRACE
from cluster.workloads import (
    COMPLIANT,
    INJECTED,
    RESTRICTED,
    PolicyFactory,
    python_policy,
    wait_until_injecting,
)
from libinject.api.types import Language
from libinject.engine.delivery import object_name

pytestmark = pytest.mark.usefixtures("running_operator")

OTHER = "4.15.0"  # requested, so never built: a dry run pulls nothing


def _pod(**annotations: str) -> dict[str, Any]:
    containers = [
        {"name": name, "image": f"example.invalid/{name}:1", "securityContext": COMPLIANT}
        for name in ("ingest", "score")
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pipeline", "annotations": annotations},
        "spec": {"containers": containers},
    }


def _admitted(admin: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(body), dry_run="All", _preload_content=False
    )
    return dict(kubejson.json_of(response))


def test_a_container_runs_its_own_version_beside_the_pods(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    namespace = namespaces(labels=RESTRICTED)
    libraries = [{"language": "python", "version": DDTRACE, "allowedVersions": ["4.*"]}]
    policies(python_policy("versions", [namespace], libraries=libraries))
    body = _pod(**{
        "libinject.dev/score.python.version": OTHER,
        "libinject.dev/ingest.python.version": "5.0.0",
    })  # fmt: skip
    wait_until_injecting(admin, namespace, probe=body)
    pod = _admitted(admin, namespace, body)
    own = object_name(Language.PYTHON, OTHER)
    copies = {c["name"]: c["image"] for c in pod["spec"]["initContainers"]}
    assert copies["libinject-python"].endswith(f":{DDTRACE}")
    assert copies[own].endswith(f":{OTHER}")
    mounts = {
        c["name"]: [m["name"] for m in c["volumeMounts"] if m["name"].startswith("libinject-")]
        for c in pod["spec"]["containers"]
    }
    assert mounts == {"ingest": ["libinject-python"], "score": [own]}
    [record] = json.loads(pod["metadata"]["annotations"][INJECTED])
    assert record["containerVersions"] == {"score": OTHER}
    assert "allowedVersions is [4.*]" in record["containerVersionsRefused"]["ingest"]
