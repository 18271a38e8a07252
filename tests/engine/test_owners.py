"""The service name of a pod whose labels name none: its workload's, found through the
ownerReferences its controller wrote (libinject.engine.owners), with the generated suffixes
stripped; labels still win, and hostile references count as none."""

from __future__ import annotations

from typing import Any

import pytest

from builders import env_of, pod, policy, run
from libinject.engine.owners import Workload, workload_of


def _owned(*references: Any, **labels: str) -> dict[str, Any]:
    target = pod(**({"labels": labels} if labels else {}))
    target["metadata"]["ownerReferences"] = list(references)
    return target


def _ref(kind: str, name: str, *, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "name": name, "controller": controller}


@pytest.mark.parametrize(
    ("target", "workload"),
    [
        pytest.param(_owned(_ref("ReplicaSet", "checkout-5d8f7c9b4"), **{"pod-template-hash": "5d8f7c9b4"}),
                     Workload("Deployment", "checkout"), id="deployment"),
        pytest.param(_owned(_ref("ReplicaSet", "checkout-v2")), Workload("ReplicaSet", "checkout-v2"),
                     id="bare-replicaset"),
        pytest.param(_owned(_ref("ReplicaSet", "a-b"), **{"pod-template-hash": "c"}),
                     Workload("ReplicaSet", "a-b"), id="hash-not-the-suffix"),
        pytest.param(_owned(_ref("Job", "backfill-29377440")), Workload("CronJob", "backfill"),
                     id="cronjob"),
        pytest.param(_owned(_ref("Job", "migrate-2024")), Workload("Job", "migrate-2024"), id="job"),
        pytest.param(_owned(_ref("StatefulSet", "ledger")), Workload("StatefulSet", "ledger"),
                     id="statefulset"),
        pytest.param(_owned(_ref("DaemonSet", "node-probe")), Workload("DaemonSet", "node-probe"),
                     id="daemonset"),
        pytest.param(_owned(_ref("ConfigMap", "x", controller=False), _ref("StatefulSet", "db")),
                     Workload("StatefulSet", "db"), id="the-controller-among-several"),
        pytest.param(_owned(_ref("Rollout", "canary")), None, id="a-kind-of-no-known-workload"),
        pytest.param(pod(), None, id="bare-pod"),
    ],
)  # fmt: skip
def test_the_workload_is_the_one_a_person_wrote(
    target: dict[str, Any], workload: Workload | None
) -> None:
    assert workload_of(target) == workload


@pytest.mark.parametrize(
    "references",
    [
        "ReplicaSet/x",
        [None, 3],
        [{"kind": "StatefulSet", "name": 7}],
        [{"kind": ["StatefulSet"], "name": "db"}],
        [{"kind": "StatefulSet", "name": ""}],
        [_ref("StatefulSet", "a", controller=False), _ref("StatefulSet", "b", controller=False)],
    ],
    ids=["not-a-list", "not-objects", "name-not-text", "kind-not-text", "empty-name", "ambiguous"],
)
def test_references_of_the_wrong_shape_name_no_workload(references: Any) -> None:
    target = pod()
    target["metadata"]["ownerReferences"] = references
    assert workload_of(target) is None


def test_the_workload_names_the_service_unless_a_label_does() -> None:
    """ddtrace's DD_SERVICE and OpenTelemetry's OTEL_SERVICE_NAME both come from the Deployment's
    name, and the decision says so; a service label on the pod wins and nothing is said."""
    deployment = _owned(
        _ref("ReplicaSet", "checkout-5d8f7c9b4"), **{"pod-template-hash": "5d8f7c9b4"}
    )
    result = run(deployment, policy())
    assert env_of(result)["DD_SERVICE"] == "checkout"
    assert result.decision.service_from == "Deployment checkout"
    otel = run(deployment, policy(libraries=[{"language": "python", "flavor": "opentelemetry",
                                              "version": "0.66b1"}]))  # fmt: skip
    assert env_of(otel)["OTEL_SERVICE_NAME"] == "checkout"
    labelled = _owned(_ref("StatefulSet", "ledger"), **{"tags.datadoghq.com/service": "books"})
    result = run(labelled, policy())
    assert env_of(result)["DD_SERVICE"] == "books"
    assert result.decision.service_from is None


def test_a_pod_without_a_workload_gets_no_service_name() -> None:
    result = run(pod(), policy())
    assert "DD_SERVICE" not in env_of(result)
    assert result.decision.service_from is None
