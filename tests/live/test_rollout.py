"""`spec.rolloutOnChange` on the real control plane: without the opt-in RBAC component the policy
says why; with it, a spec change rolls out exactly the workloads the policy selects, once, and
their new pods are injected as the policy now says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import kubejson, poll
from cluster.fixtures import GROUP, PLURAL, VERSION, NamespaceFactory, OperatorFactory
from cluster.kubectl import Kubectl
from cluster.operator import OperatorProcess
from cluster.workloads import (
    ENABLED,
    INJECTED,
    PolicyFactory,
    app_pod,
    events_for,
    python_policy,
)
from libinject.rollout import annotation, spec_hash

REPO = Path(__file__).parents[2]
RIGHTS = REPO / "manifests" / "components" / "rollout" / "rbac.yaml"
REVISION = "deployment.kubernetes.io/revision"


@pytest.fixture
def rollout_rights(kubectl: Kubectl, installed: None) -> Iterator[None]:
    """The opt-in component's ClusterRole and binding, for this test only."""
    kubectl("apply", "-f", str(RIGHTS))
    yield
    kubectl("delete", "-f", str(RIGHTS))


def deployment(admin: client.ApiClient, namespace: str, name: str, tier: str) -> None:
    pod = app_pod(name)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name, "tier": tier}}, "spec": pod["spec"]},
        },
    }
    client.AppsV1Api(admin).create_namespaced_deployment(namespace, kubejson.body(body))


def template_annotations(admin: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    found = client.AppsV1Api(admin).read_namespaced_deployment(name, namespace)
    assert found.spec is not None
    assert found.spec.template.metadata is not None
    return dict(found.spec.template.metadata.annotations or {})


def revision(admin: client.ApiClient, namespace: str, name: str) -> str:
    found = client.AppsV1Api(admin).read_namespaced_deployment(name, namespace)
    assert found.metadata is not None
    return str((found.metadata.annotations or {}).get(REVISION))


def stored_spec(admin: client.ApiClient, name: str) -> dict[str, Any]:
    obj: Any = client.CustomObjectsApi(admin).get_cluster_custom_object(
        GROUP, VERSION, PLURAL, name
    )  # custom objects are JSON
    return dict(obj["spec"])


@pytest.mark.usefixtures("running_operator")
def test_without_the_rollout_component_the_policy_says_why(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """The base RBAC cannot patch workloads: a Warning Event names the component to apply, and
    the workload is left as it was."""
    namespace = namespaces(labels=ENABLED)
    deployment(admin, namespace, "web", "web")
    policy = policies(python_policy("refused", [namespace], rolloutOnChange=True))
    refused = poll.until(
        lambda: [e for e in events_for(admin, policy) if e.reason == "RolloutForbidden"],
        what=f"a RolloutForbidden event for {policy}",
        timeout=30,
    )
    assert refused[0].type == "Warning"
    assert "manifests/components/rollout" in refused[0].message
    assert annotation(policy) not in template_annotations(admin, namespace, "web")


@pytest.mark.usefixtures("rollout_rights")
def test_a_spec_change_rolls_out_the_selected_workloads_once(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: OperatorProcess,
    operator_processes: OperatorFactory,
) -> None:
    """Created, the policy rolls out the Deployment its podSelector picks (not the other one);
    changed, it rolls it out again and the new pods get the new version; an operator restarted
    afterwards rolls out nothing (the template's hash is the record, not the process's memory)."""
    namespace = namespaces(labels=ENABLED)
    deployment(admin, namespace, "web", "web")
    deployment(admin, namespace, "db", "db")
    poll.until(
        lambda: revision(admin, namespace, "web") == "1", what="web's first rollout", timeout=30
    )
    body = python_policy("roll", [namespace], rolloutOnChange=True)
    body["spec"]["podSelector"] = {"matchLabels": {"tier": "web"}}
    policy = policies(body)
    key = annotation(policy)

    def rolled_to(digest: str) -> bool:
        return template_annotations(admin, namespace, "web").get(key) == digest

    poll.until(
        lambda: rolled_to(spec_hash(stored_spec(admin, policy))), what="web annotated", timeout=30
    )
    assert key not in template_annotations(admin, namespace, "db")
    poll.until(lambda: revision(admin, namespace, "web") == "2", what="web rolled out", timeout=30)
    rolled = [e for e in events_for(admin, policy) if e.reason == "RolledOut"]
    assert f"Deployment {namespace}/web" in rolled[0].message

    patch = {
        "spec": {
            "libraries": [{"language": "python", "flavor": "opentelemetry", "version": "0.66b1"}]
        }
    }
    client.CustomObjectsApi(admin).patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, policy, patch
    )
    poll.until(
        lambda: rolled_to(spec_hash(stored_spec(admin, policy))),
        what="web re-annotated",
        timeout=30,
    )
    poll.until(
        lambda: revision(admin, namespace, "web") == "3", what="web rolled out again", timeout=30
    )

    def newest_injected_version() -> str | None:
        # The pods as one list call gives them: the rollout deletes old pods meanwhile, so a
        # pod listed and then read on its own may be gone (a 404 failed this test once).
        pods = client.CoreV1Api(admin).list_namespaced_pod(namespace, label_selector="app=web")
        for item in pods.items:
            assert item.metadata is not None
            record = json.loads((item.metadata.annotations or {}).get(INJECTED, "[]"))
            if record and record[0]["version"] == "0.66b1":
                return "0.66b1"
        return None

    poll.until(newest_injected_version, what="a web pod with the new version", timeout=60)

    # A new operator process remembers nothing: only the hash on the template keeps it from
    # rolling the workload out again. Its first pass is done when it has counted the policies.
    running_operator.stop()
    fresh = operator_processes().wait_ready()
    try:
        poll.until(
            lambda: fresh.metrics().get('libinject_policies{reason="Valid"}', 0) >= 1,
            what="the new operator's first reconcile pass",
            timeout=60,
        )
        # Logged before the pass counts the policies, so its absence now is final.
        assert not [line for line in fresh.log_lines() if line.get("event") == "rolled out"]
        assert revision(admin, namespace, "web") == "3"
    finally:
        fresh.stop()
