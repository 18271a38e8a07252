"""The operator as users meet it: `libinject run` (as its ServiceAccount, with the manifests' RBAC
only) serving the webhook the API server calls, and reconciling policies, on the real control
plane. Each test creates its own namespaces and policies (selected by name), so tests can share
one operator without seeing each other's objects."""

from __future__ import annotations

import functools
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import kubejson, poll
from cluster.fixtures import NamespaceFactory
from cluster.kubectl import Kubectl
from cluster.labeller import LABEL as LABELLED
from cluster.labeller import labelling_webhook
from cluster.operator import Operator
from cluster.workloads import (
    ENABLED,
    INJECTED,
    INSTRUMENTED,
    SKIPPED,
    PolicyFactory,
    app_pod,
    condition,
    create_pod,
    deployment,
    env_of,
    events_for,
    init_names,
    pod_names,
    policy_status,
    python_policy,
    read_pod,
    wait_until_injecting,
)
from libinject.engine import limits


@pytest.mark.usefixtures("running_operator")
def test_a_deployment_in_an_opted_in_namespace_is_injected_as_the_policy_says(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    kubectl: Kubectl,
) -> None:
    """A Deployment's pods (created by the ReplicaSet controller: no namespace in their body)
    get the policy's library, and the Deployment's name as their service (they have no service
    label); `kubectl get ipol` shows the policy Ready, its languages, its one namespace and both
    pods instrumented."""
    namespace = namespaces(labels=ENABLED)
    policy = policies(python_policy("deploy", [namespace]))
    poll.until(
        lambda: condition(policy_status(admin, policy), "Ready").get("status") == "True",
        what=f"{policy} Ready",
        timeout=30,
    )
    client.AppsV1Api(admin).create_namespaced_deployment(
        namespace, kubejson.body(deployment("checkout", replicas=2))
    )
    names = poll.until(
        lambda: pod_names(admin, namespace) if len(pod_names(admin, namespace)) == 2 else None,
        what="the Deployment's two pods",
        timeout=60,
    )
    for name in names:
        pod = read_pod(admin, namespace=namespace, name=name)
        record = json.loads(pod["metadata"]["annotations"][INJECTED])
        assert [(r["policy"], r["language"], r["version"]) for r in record] == [
            (policy, "python", "4.16.0")
        ]
        assert pod["metadata"]["labels"][INSTRUMENTED] == "true"
        assert init_names(pod) == ["libinject-python"]
        assert env_of(pod, "app")["PYTHONPATH"] == "/opt/libinject/python:/srv/app"
        # No service label: the ReplicaSet the pod names in its ownerReferences, less its
        # pod-template-hash, is the Deployment, whose name is the service.
        assert env_of(pod, "app")["DD_SERVICE"] == "checkout"

    def counted() -> list[str] | None:  # the reconciler counts the pods once it has seen them
        row = kubectl("get", "ipol", policy, "--no-headers").stdout.split()
        return row if row[4] == "2/2" else None

    row = poll.until(counted, what=f"{policy} counting its two pods", timeout=30)
    assert row[:6] == [policy, "python", "auto", "1", "2/2", "True"]


@pytest.mark.usefixtures("running_operator")
def test_unlabelled_namespaces_and_opted_out_pods_are_left_alone(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """A namespace without the opt-in label is never even sent to the webhook (nothing of ours
    on the pod, though the policy names it); an opted-out pod in an opted-in namespace is left
    without a library, and says why."""
    plain = namespaces()
    enabled = namespaces(labels=ENABLED)
    policies(python_policy("alone", [plain, enabled]))
    wait_until_injecting(admin, enabled)

    untouched = create_pod(admin, namespace=plain, body=app_pod("plain"))
    assert not any(k.startswith("libinject.dev/") for k in untouched["metadata"].get("labels", {}))
    assert not any(
        k.startswith("libinject.dev/") for k in untouched["metadata"].get("annotations") or {}
    )
    assert init_names(untouched) == []

    opted_out = create_pod(
        admin, namespace=enabled, body=app_pod("opted-out", **{"libinject.dev/inject": "false"})
    )
    assert init_names(opted_out) == []
    assert opted_out["metadata"]["labels"][INSTRUMENTED] == "false"
    assert opted_out["metadata"]["annotations"][SKIPPED].startswith("PodOptedOut:")
    assert env_of(opted_out, "app") == {"PYTHONPATH": "/srv/app"}


@pytest.mark.usefixtures("running_operator")
def test_a_container_the_pod_excludes_gets_no_library(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """`libinject.dev/exclude-containers: shipper` on a pod of two containers: the app gets the
    library, the shipper nothing, and the record says why."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("exclude", [namespace]))
    wait_until_injecting(admin, namespace)
    body = app_pod("two", **{"libinject.dev/exclude-containers": "shipper"})
    body["spec"]["containers"].append({"name": "shipper", "image": "example.invalid/shipper:1"})
    pod = create_pod(admin, namespace=namespace, body=body)
    (record,) = json.loads(pod["metadata"]["annotations"][INJECTED])
    assert record["containers"] == ["app"]
    assert record["skippedContainers"] == {"shipper": "ContainerExcluded"}
    assert env_of(pod, "shipper") == {}
    assert env_of(pod, "app")["PYTHONPATH"] == "/opt/libinject/python:/srv/app"


@pytest.mark.usefixtures("running_operator")
def test_a_pod_asks_for_a_delivery_mode_its_policy_allows(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """An image-volume policy that lets pods ask for a copy: the pod asking for init-container
    gets the copy container, the one asking for csi (not allowed) the image volume, and each
    record says which request was granted or refused."""
    namespace = namespaces(labels=ENABLED)
    injection = {"mode": "image-volume", "allowedModes": ["init-container"]}
    policies(python_policy("modes", [namespace], injection=injection))
    wait_until_injecting(admin, namespace)
    copied = create_pod(
        admin,
        namespace=namespace,
        body=app_pod("copied", **{"libinject.dev/mode": "init-container"}),
    )
    (record,) = json.loads(copied["metadata"]["annotations"][INJECTED])
    assert (record["mode"], record["modeRequested"]) == (
        "init-container",
        "libinject.dev/mode='init-container' is allowed",
    )
    assert init_names(copied) == ["libinject-python"]
    mounted = create_pod(
        admin, namespace=namespace, body=app_pod("mounted", **{"libinject.dev/mode": "csi"})
    )
    (record,) = json.loads(mounted["metadata"]["annotations"][INJECTED])
    assert record["mode"] == "image-volume"
    assert "allowedModes is [init-container]" in record["modeRefused"]
    assert init_names(mounted) == []


@pytest.fixture
def operator_kind() -> str:
    """The webhook's tests run the operator from its image, as the Deployment defines it."""
    return "image"


def admissions_of(operator: Operator, namespace: str, pod: str) -> list[str]:
    """The outcome of each webhook call for this pod, in order, from the operator's log."""
    return [
        str(line["outcome"])
        for line in operator.log_lines()
        if line.get("event") == "admission"
        and line.get("namespace") == namespace
        and line.get("pod") == pod
    ]


def test_a_pod_costs_one_webhook_call(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: Operator,
) -> None:
    """Our copy container already carries the ServiceAccount token mount that admission would add
    after us, so nothing changes the pod after our webhook and the API server does not call it
    again: one call per pod, and the stored copy container has that mount."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("once", [namespace]))
    wait_until_injecting(admin, namespace)
    stored = create_pod(admin, namespace=namespace, body=app_pod("once"))
    assert admissions_of(running_operator, namespace, "once") == ["injected"]
    (copy,) = stored["spec"]["initContainers"]
    token = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert [m["mountPath"] for m in copy["volumeMounts"]] == ["/libinject-target", token]


def test_reinvocation_and_a_reapplied_pod_leave_the_pod_unchanged(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: Operator,
    tmp_path: Path,
) -> None:
    """Another webhook changes the pod after ours (a labeller named to run later), so the API
    server calls ours again (reinvocationPolicy IfNeeded): that second call changes nothing. And
    a pod re-created from its own stored spec (a re-apply) comes back exactly as it was."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("again", [namespace]))
    wait_until_injecting(admin, namespace)

    with labelling_webhook(admin, namespace=namespace, directory=tmp_path):
        first = create_pod(admin, namespace=namespace, body=app_pod("twice"))
    assert first["metadata"]["labels"][LABELLED[0]] == LABELLED[1]
    assert admissions_of(running_operator, namespace, "twice") == ["injected", "unchanged"]
    assert init_names(first) == ["libinject-python"]
    assert first["metadata"]["labels"][INSTRUMENTED] == "true"
    assert SKIPPED not in first["metadata"]["annotations"]

    again = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "twice-again",
            "labels": first["metadata"]["labels"],
            "annotations": first["metadata"]["annotations"],
        },
        "spec": {k: v for k, v in first["spec"].items() if k != "nodeName"},
    }
    second = create_pod(admin, namespace=namespace, body=again)
    for key in ("initContainers", "containers", "volumes"):
        assert second["spec"][key] == first["spec"][key], key
    assert second["metadata"]["annotations"] == first["metadata"]["annotations"]


@pytest.mark.usefixtures("running_operator")
def test_an_invalid_policy_gets_a_false_ready_condition_and_a_warning_event(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """A rule the schema cannot express (the default version outside allowedVersions) is
    reported on the object: Ready False, reason Invalid naming the field, and a Warning Event."""
    namespace = namespaces(labels=ENABLED)
    body = python_policy("invalid", [namespace])
    body["spec"]["libraries"][0]["allowedVersions"] = ["2.*"]
    policy = policies(body)
    ready = poll.until(
        lambda: condition(policy_status(admin, policy), "Ready"), what=f"{policy} Ready", timeout=30
    )
    assert (ready["status"], ready["reason"]) == ("False", "Invalid")
    assert "spec.libraries[0].version" in ready["message"]
    warnings = poll.until(
        lambda: [e for e in events_for(admin, policy) if e.reason == "PolicyInvalid"],
        what=f"a PolicyInvalid event for {policy}",
        timeout=30,
    )
    assert warnings[0].type == "Warning"
    assert "spec.libraries[0].version" in warnings[0].message
    # And what the status calls invalid injects nothing: the namespace's pods stay plain.
    plain = create_pod(admin, namespace=namespace, body=app_pod("not-injected"))
    assert init_names(plain) == []
    assert plain["metadata"]["annotations"][SKIPPED].startswith("NoMatchingPolicy:")


def _conflicting(admin: client.ApiClient, name: str) -> dict[str, Any] | None:
    found = condition(policy_status(admin, name), "Conflicting")
    return found if found.get("status") == "True" else None


def _conflict_events(admin: client.ApiClient, name: str) -> list[Any]:
    return [e for e in events_for(admin, name) if e.reason == "PolicyConflict"]


@pytest.mark.usefixtures("running_operator")
def test_conflicting_policies_are_told_which_one_wins(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """Two policies with the same priority for the same language in the same namespace: both
    get Conflicting True naming the other and the winner, and a Warning Event; both stay Ready."""
    namespace = namespaces(labels=ENABLED)
    first = policies(python_policy("tie-a", [namespace]))
    second = policies(python_policy("tie-b", [namespace]))
    winner = min(first, second)
    for name, other in ((first, second), (second, first)):
        conflicting = poll.until(
            functools.partial(_conflicting, admin, name),
            what=f"{name} Conflicting",
            timeout=30,
        )
        assert conflicting["reason"] == "SamePriority"
        assert other in conflicting["message"]
        assert f"{winner} wins" in conflicting["message"]
        assert condition(policy_status(admin, name), "Ready")["status"] == "True"
        poll.until(
            functools.partial(_conflict_events, admin, name),
            what=f"a PolicyConflict event for {name}",
            timeout=30,
        )


@pytest.mark.usefixtures("running_operator")
def test_a_namespace_label_change_updates_the_count(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """matchedNamespaces follows namespace labels: opting a selected namespace in raises it."""
    team = f"team-{secrets.token_hex(3)}"
    namespace = namespaces(labels={"team": team})
    body = python_policy("count", [])
    body["spec"]["namespaceSelector"] = {"matchLabels": {"team": team}}
    policy = policies(body)
    poll.until(
        lambda: policy_status(admin, policy).get("matchedNamespaces") == 0,
        what=f"{policy} counting 0",
        timeout=30,
    )
    patch = {"metadata": {"labels": ENABLED}}
    client.CoreV1Api(admin).patch_namespace(namespace, patch)
    poll.until(
        lambda: policy_status(admin, policy).get("matchedNamespaces") == 1,
        what=f"{policy} counting 1 after the label",
        timeout=30,
    )


def test_metrics_count_admissions_and_show_the_certificate_expiry(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: Operator,
) -> None:
    """/metrics counts the injected admission, has its latency, the index sizes, the policies by
    Ready reason (once the status pass has run), and the serving certificate's expiry (generated:
    about 90 days ahead)."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("metrics", [namespace]))
    wait_until_injecting(admin, namespace)
    key = 'libinject_admissions_total{outcome="injected",reason="Injected"}'
    before = running_operator.metrics().get(key, 0.0)
    create_pod(admin, namespace=namespace, body=app_pod("counted"))
    after = running_operator.metrics()
    assert after[key] == before + 1
    assert after["libinject_admission_duration_seconds_count"] >= 1
    assert after["libinject_ready"] == 1
    # The gauges follow the watches: this test's policy is in the index and counted as Valid.
    assert after['libinject_index_entries{index="policies"}'] >= 1
    assert after['libinject_index_entries{index="namespaces"}'] >= 1
    # The policies gauge follows the status pass, which runs after the watch event settles.
    poll.until(
        lambda: running_operator.metrics().get('libinject_policies{reason="Valid"}', 0) >= 1,
        what="the policies gauge to count this test's policy as Valid",
        timeout=30,
    )
    days_left = (after["libinject_certificate_expiry_timestamp_seconds"] - time.time()) / 86400
    assert 80 < days_left <= 90


def test_the_start_up_heap_is_frozen_once_the_indexes_are_primed(
    running_operator: Operator,
) -> None:
    """Once primed, the modules, clients and initial listings are out of the cyclic collector's
    walk (tens of thousands of objects), so a full collection no longer stalls the webhook."""
    primed = [
        line
        for line in running_operator.log_lines()
        if str(line.get("event", "")).startswith("indexes primed")
    ]
    assert primed, "the operator never logged its indexes primed"
    assert int(str(primed[-1]["frozen_objects"])) > 10_000  # a restart appends to the same log


def test_a_pod_beyond_the_engines_bounds_is_skipped_and_says_why(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: Operator,
) -> None:
    """A pod with more containers than one admission may decide for (the API server accepts it)
    is admitted as it came, with PodTooLarge on it, in the log and in the metrics; a pod in the
    same namespace right after it is injected as usual."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("bounds", [namespace]))
    wait_until_injecting(admin, namespace)
    key = 'libinject_admissions_total{outcome="skipped",reason="PodTooLarge"}'
    before = running_operator.metrics().get(key, 0.0)
    count = limits.MAX_CONTAINERS + 1
    crowded = app_pod("crowded")
    crowded["spec"]["containers"] = [
        {"name": f"c{n}", "image": "registry.invalid/app:1"} for n in range(count)
    ]
    stored = create_pod(admin, namespace=namespace, body=crowded)
    assert stored["metadata"]["annotations"][SKIPPED].startswith(
        f"PodTooLarge: the pod has {count} containers"
    )
    assert stored["metadata"]["labels"][INSTRUMENTED] == "false"
    assert "initContainers" not in stored["spec"]
    assert running_operator.metrics()[key] == before + 1
    assert admissions_of(running_operator, namespace, "crowded") == ["skipped"]
    after = create_pod(admin, namespace=namespace, body=app_pod("next"))
    assert after["metadata"]["labels"][INSTRUMENTED] == "true"


def test_the_operator_reads_the_api_servers_timeout(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: Operator,
) -> None:
    """The API server's call carries the configuration's timeoutSeconds (3) as `?timeout=3s`;
    each admission's log line has it, which is what a late answer is measured against."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("timeout", [namespace]))
    wait_until_injecting(admin, namespace)
    create_pod(admin, namespace=namespace, body=app_pod("timed"))
    (line,) = [
        line
        for line in running_operator.log_lines()
        if line.get("event") == "admission"
        and line.get("pod") == "timed"
        and line.get("namespace") == namespace
    ]
    assert line["timeout"] == 3.0
