"""`make demo` does what the README says, on a control plane of its own; a second `make demo` on
the live demo does it again with the same result; `make cluster-down` stops everything it left.
And the demo's answer to a pod the webhook never answered for (cluster.admitted)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import supervisor
from cluster.admitted import NotInjectedError, injected_pods
from cluster.fixtures import NamespaceFactory
from cluster.kubectl import Kubectl
from cluster.operator import OperatorProcess
from cluster.workloads import (
    ENABLED,
    INJECTED,
    INSTRUMENTED,
    PolicyFactory,
    app_pod,
    python_policy,
    wait_until_injecting,
)

REPO = Path(__file__).parents[2]
COMPANIONS = ("operator", "registry", "test-agent")


def run_demo(env: dict[str, str]) -> str:
    demo = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    for step in range(1, 13):
        assert f"== {step}/12 " in demo.stdout
    return demo.stdout


def section(output: str, after: str) -> str:
    """What the demo printed after the line ending in `after`, up to the next step."""
    return output.split(f"{after}\n")[1].split("\n== ", maxsplit=1)[0]


def root_spans(output: str) -> list[dict[str, Any]]:
    """The root span the demo showed for each pod it ran, in order."""
    shown = output.split("(the root span)\n")[1:]
    spans = [json.loads(text.split("\n}", maxsplit=1)[0] + "\n}") for text in shown]
    assert all(isinstance(span, dict) for span in spans)
    return spans


def payments_pod(output: str) -> str:
    found = re.search(r"kubectl -n payments get pod/(\S+) -o yaml", output)
    assert found is not None, output
    return found.group(1)


def test_demo_runs_twice_on_one_cluster_with_the_same_result(tmp_path: Path) -> None:
    """The first run does every step and leaves a cluster to explore. The second, on that live
    cluster, succeeds too (every step applies, nothing creates twice), reuses the trace agent and
    restarts the registry (stopped meanwhile) on their recorded ports, runs the very pod of the
    first run (whose image and agent addresses are those ports) and shows the same traces.
    `cluster down` then stops every process the demo left and removes the state."""
    state = tmp_path / "cluster"
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "LIBINJECT_CLUSTER_DIR": str(state)}
    try:
        first = run_demo(env)
        # The operator came up, the reconciler filled the columns, and the rolled-out checkout
        # pods were injected by the webhook with both libraries' copy containers.
        assert "ready" in first.split("/readyz")[1]
        table = first.split("$ kubectl get ipol\n")[1]
        assert re.search(r"shop-otel\s+java,python\s+auto\s+1\s+\d+/\d+\s+True", table), table
        assert re.search(r"java-default\s+java\s+auto\s+2\s+\d+/\d+\s+True", table), table
        assert "namespace/shop labeled" in first
        checkout = section(first, "app=checkout -o yaml  (the injected parts)")
        assert "libinject.dev/instrumented=true" in checkout
        assert "init container libinject-java" in checkout
        assert "init container libinject-python" in checkout
        assert "policy shop-otel" in checkout
        # The images were built and pushed without Docker, and a payments-api pod (Flask) and a
        # ledger pod (Jetty), each run from the spec the webhook wrote with both libraries, sent
        # a trace with its labels' service, env and version.
        assert "/libinject/python-ddtrace:4.16.0@sha256:" in first
        assert "/libinject/java-ddtrace:1.56.0@sha256:" in first
        ledger = section(
            first, "Running a ledger pod (Java, Jetty) as a kubelet would; the trace it sent"
        )
        assert "java ddtrace 1.56.0 (init-container, policy java-default) -> app" in ledger
        assert "python ddtrace 4.16.0 (init-container, policy python-default) -> app" in ledger
        assert "libinject: loaded ddtrace 4.16.0 from /opt/libinject/python/" in first
        assert "libinject: loaded ddtrace 1.56.0 from /opt/libinject/java " in first
        flask, jetty = spans = root_spans(first)
        assert flask["service"] == "payments-api"
        assert flask["name"] == "flask.request"
        assert (flask["env"], flask["version"]) == ("prod", "2.3.0")
        assert jetty["service"] == "ledger"
        assert jetty["component"] == "jetty-server"
        assert (jetty["env"], jetty["version"]) == ("prod", "1.8.0")
        assert f"export KUBECONFIG={state / 'admin.kubeconfig'}" in first
        assert supervisor.running_pid(state) is not None, "the control plane should stay up"
        left = {name: supervisor.companion_pid(state, name) for name in COMPANIONS}
        assert None not in left.values(), left

        # A companion that died meanwhile comes back on its recorded ports, which the first
        # run's pods name; a live one is reused.
        supervisor.stop_companion(state, "registry")
        second = run_demo(env)
        assert "(the registry started again on the ports an earlier run recorded: http " in second
        assert "(the test-agent of an earlier run, reused on apm 127.0.0.1:" in second
        assert payments_pod(second) == payments_pod(first)
        assert section(second, "app=checkout -o yaml  (the injected parts)") == checkout
        assert "libinject: loaded ddtrace 4.16.0" in second
        assert "libinject: loaded ddtrace 1.56.0" in second
        same = ("service", "name", "resource", "env", "version", "component")
        shown = [{k: span.get(k) for k in same} for span in root_spans(second)]
        assert shown == [{k: span.get(k) for k in same} for span in spans]
        left = {name: supervisor.companion_pid(state, name) for name in COMPANIONS}
        assert None not in left.values(), left
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "cluster", "down", str(state)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    assert down.returncode == 0
    for name in COMPANIONS:
        assert f"{name} stopped" in down.stderr
    assert supervisor.running_pid(state) is None
    for pid in left.values():
        assert pid is not None
        assert not supervisor.runs(pid), f"pid {pid} outlived cluster down"
    assert not state.exists()


def test_a_pod_admitted_without_the_webhooks_answer_is_named_and_created_again(
    admin: client.ApiClient,
    kubectl: Kubectl,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    running_operator: OperatorProcess,
    host_operators: Callable[..., OperatorProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the operator stopped, the API server cannot reach the webhook and admits a
    Deployment's pod as it came (failurePolicy Ignore): no libinject mark at all. The demo's pick
    says so (the answer never reached the API server; the operator's /metrics and log), deletes
    the pod and, with the operator still down, fails with that reason after its re-creations
    instead of waiting. Once an operator is back, the pick re-creates the pod and returns the
    injected one."""
    namespace = namespaces(labels=ENABLED)
    policies(python_policy("unanswered", [namespace]))
    wait_until_injecting(admin, namespace)
    running_operator.stop()  # its port is closed now: the API server's call fails
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": app_pod("x")["spec"]},
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(deployment))
    pick: dict[str, Any] = {"namespace": namespace, "selector": "app=api", "count": 1}

    with pytest.raises(NotInjectedError) as refused:
        injected_pods(kubectl, **pick, operator=running_operator, recreations=1)
    said = capsys.readouterr().out
    assert "the webhook's answer never reached the API server" in str(refused.value)
    assert "after 1 re-creation(s)" in str(refused.value)
    assert "was not injected" in said
    assert "the webhook's answer never reached the API server" in said
    assert "/metrics did not answer" in said
    assert str(running_operator.log) in said
    assert "re-creation 1 of at most 1" in said
    unanswered = re.findall(rf"{namespace}/(api-\S+) was not injected", said)
    assert len(unanswered) == 1

    fresh = host_operators().wait_ready()
    try:
        (pod,) = injected_pods(kubectl, **pick, operator=fresh)
    finally:
        fresh.stop()
    said = capsys.readouterr().out
    # The pod left by the failed pick was deleted again, and its replacement was injected.
    assert re.search(rf"{namespace}/api-\S+ was not injected: .*never reached", said), said
    assert pod["metadata"]["name"] not in (unanswered[0], *re.findall(r"/(api-\S+) was", said))
    assert pod["metadata"]["labels"][INSTRUMENTED] == "true"
    assert json.loads(pod["metadata"]["annotations"][INJECTED])[0]["language"] == "python"


def test_a_recorded_companion_is_stopped_with_its_group_and_a_reused_pid_is_left_alone(
    tmp_path: Path,
) -> None:
    """What the demo leaves running is recorded with its pid's start time: a record whose pid
    now belongs to another process (same pid, other start time) is not that companion, and
    stopping it signals nothing; the right record stops the process and keeps its ports."""
    sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        supervisor.record_companion(tmp_path, "sleeper", pid=sleeper.pid, ports={"http": 5000})
        assert supervisor.companion_pid(tmp_path, "sleeper") == sleeper.pid
        record = tmp_path / "companions" / "sleeper.json"
        kept = record.read_text()
        record.write_text(json.dumps(json.loads(kept) | {"started": "1"}))  # a reused pid
        assert supervisor.companion_pid(tmp_path, "sleeper") is None
        supervisor.stop_companion(tmp_path, "sleeper")
        assert sleeper.poll() is None

        record.write_text(kept)
        supervisor.stop_companion(tmp_path, "sleeper")
        assert sleeper.wait(timeout=30) == -15  # SIGTERM, to its process group
        assert supervisor.companion_pid(tmp_path, "sleeper") is None
        assert supervisor.companion_ports(tmp_path, "sleeper") == {"http": 5000}
    finally:
        sleeper.kill()
        sleeper.wait()
