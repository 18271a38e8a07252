"""A policy's env from a Secret, a ConfigMap, the pod and the container's resources, through the
webhook, resolved by the pod runner as the kubelet resolves it, and read by the real tracer."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from kubernetes import client

from cluster import kubejson
from cluster.apps import FLASK, image_env, virtualenv
from cluster.fixtures import NamespaceFactory
from cluster.libraries import library_versions
from cluster.podrunner import PodRunner
from cluster.workloads import (
    ENABLED,
    PolicyFactory,
    app_pod,
    create_pod,
    policy,
    wait_until_injecting,
)

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]

ENV = [
    {"name": "DD_ENV", "valueFrom": {"secretKeyRef": {"name": "tracing", "key": "env"}}},
    {"name": "DD_VERSION", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "version"}}},
    # An empty value beside valueFrom is no value, for the API server as for Kubernetes' env.
    {"name": "TEAM", "value": "", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
    {"name": "DD_TAGS", "value": "team:$(TEAM)"},
    {"name": "MEMORY_MI",
     "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}}},
]  # fmt: skip

# What the app reports: the variables as the process got them, and what ddtrace made of them.
REPORT = """
import json, os
import ddtrace
names = ["DD_ENV", "DD_VERSION", "TEAM", "DD_TAGS", "MEMORY_MI"]
print(json.dumps({
    "env": {name: os.environ.get(name) for name in names},
    "tracer_env": ddtrace.config.env,
    "tracer_tags": ddtrace.config.tags,
}))
"""


def test_policy_env_from_sources_reaches_the_app_and_its_tracer(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    library_images: Callable[..., str],
    runner: PodRunner,
) -> None:
    """The Secret's value becomes the tracer's env; the missing ConfigMap leaves DD_VERSION unset
    and does not stop the pod (the webhook writes its key optional); the pod's label and the
    container's memory request arrive through the downward API, and $(TEAM) expands in a later
    value. The API server accepted the pod as the webhook wrote it."""
    namespace = namespaces(labels=ENABLED)
    secret = {
        "metadata": {"name": "tracing"},
        "data": {"env": base64.b64encode(b"staging").decode()},
    }
    client.CoreV1Api(admin).create_namespaced_secret(namespace, kubejson.body(secret))
    library = {
        "language": "python",
        "version": library_versions("python")["ddtrace"],
        "image": library_images("ddtrace"),
    }
    policies(policy("env-sources", [namespace], libraries=[library], env=ENV))
    wait_until_injecting(admin, namespace)
    body = app_pod("reporter")
    body["metadata"]["labels"]["team"] = "payments"
    body["spec"]["containers"][0]["command"] = ["python", "-c", REPORT]
    pod = create_pod(admin, namespace=namespace, body=body)
    done = runner.run_to_completion(pod, app=image_env(virtualenv(FLASK)), timeout=60)
    assert done.returncode == 0, done.output
    report = json.loads(done.output.strip().splitlines()[-1])
    assert report["env"] == {
        "DD_ENV": "staging",
        "DD_VERSION": None,
        "TEAM": "payments",
        "DD_TAGS": "team:payments",
        "MEMORY_MI": "256",
    }
    assert report["tracer_env"] == "staging"
    assert report["tracer_tags"].get("team") == "payments"
