"""Each policy's coverage counts (status.pods, and `kubectl get ipol`'s Instrumented column),
through the real control plane: pods created before the policy, injected by it, opted out; a
change of the policy's spec makes its injected pods outdated; a deleted pod leaves the counts."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from cluster import poll
from cluster.fixtures import NamespaceFactory
from cluster.kubectl import Kubectl
from cluster.workloads import (
    ENABLED,
    PolicyFactory,
    app_pod,
    create_pod,
    policy_status,
    python_policy,
    wait_until_injecting,
)
from libinject.api.types import GROUP, PLURAL, VERSION

pytestmark = pytest.mark.usefixtures("running_operator")


def _counted(admin: client.ApiClient, name: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The policy's status once its pod counts are `expected`."""

    def current() -> dict[str, Any] | None:
        status = policy_status(admin, name)
        return status if status.get("pods") == expected else None

    found: dict[str, Any] = poll.until(current, what=f"{name} counting {expected}", timeout=30)
    return found


def test_a_policys_status_counts_its_pods_by_state(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    kubectl: Kubectl,
) -> None:
    namespace = namespaces(labels=ENABLED)
    create_pod(admin, namespace=namespace, body=app_pod("early"))  # before any policy
    name = policies(python_policy("coverage", [namespace]))
    wait_until_injecting(admin, namespace)
    create_pod(admin, namespace=namespace, body=app_pod("web"))
    opted_out = app_pod("opted-out", **{"libinject.dev/inject": "false"})
    create_pod(admin, namespace=namespace, body=opted_out)
    status = _counted(admin, name, {"total": 3, "instrumented": 1, "outdated": 1,
                                    "skipped": {"PodOptedOut": 1}})  # fmt: skip
    assert status["instrumented"] == "1/3"
    row = kubectl("get", "ipol", name, "--no-headers").stdout.split()
    assert row[4] == "1/3"

    # A new spec: the pod injected at the old one is outdated now.
    change = {"spec": {"libraries": [{"language": "python", "version": "4.16.0",
                                      "allowedVersions": ["4.*"]}]}}  # fmt: skip
    client.CustomObjectsApi(admin).patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, change)
    _counted(admin, name, {"total": 3, "instrumented": 0, "outdated": 2,
                           "skipped": {"PodOptedOut": 1}})  # fmt: skip

    client.CoreV1Api(admin).delete_namespaced_pod("early", namespace, grace_period_seconds=0)
    status = _counted(admin, name, {"total": 2, "instrumented": 0, "outdated": 1,
                                    "skipped": {"PodOptedOut": 1}})  # fmt: skip
    assert status["instrumented"] == "0/2"
