"""The control plane itself: the pinned version, RBAC and Pod Security on, controllers and fake
nodes that turn a Deployment into Running pods, and a teardown that leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from cluster import harness, kubejson, poll, versions
from cluster.fixtures import NamespaceFactory, token_client

TESTS = Path(__file__).parents[1]


def test_serves_the_pinned_version(admin: client.ApiClient) -> None:
    assert client.VersionApi(admin).get_code().git_version == versions.KUBERNETES


def test_rbac_is_enforced(
    admin: client.ApiClient, control_plane: harness.ControlPlane, namespace: str
) -> None:
    """A ServiceAccount with no bindings is authenticated but may not list pods: RBAC is on."""
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    token = client.CoreV1Api(admin).create_namespaced_service_account_token(
        "default", namespace, request
    )
    assert token.status is not None
    nobody = client.CoreV1Api(token_client(control_plane, str(token.status.token)))
    with pytest.raises(ApiException) as refused:
        nobody.list_namespaced_pod(namespace)
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:default" in str(refused.value.body)


def _pod(name: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1", **container}]},
    }


def test_pod_security_is_enforced(admin: client.ApiClient, namespaces: NamespaceFactory) -> None:
    """PodSecurity admission judges pods by the namespace's label (the dry-run tests rely on it)."""
    restricted = namespaces(labels={"pod-security.kubernetes.io/enforce": "restricted"})
    core = client.CoreV1Api(admin)
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(restricted, kubejson.body(_pod("plain")), dry_run="All")
    assert refused.value.status == 403
    assert (
        'violates PodSecurity "restricted:latest"' in json.loads(str(refused.value.body))["message"]
    )
    baseline = namespaces(labels={"pod-security.kubernetes.io/enforce": "baseline"})
    core.create_namespaced_pod(baseline, kubejson.body(_pod("plain")), dry_run="All")


def _deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/web:1"}]},
            },
        },
    }


def _owner(obj: Any) -> str | None:
    """The name of an object's first owner."""
    owners = (obj.metadata.owner_references if obj.metadata else None) or []
    return str(owners[0].name) if owners else None


def test_deployment_becomes_running_pods(
    admin: client.ApiClient, control_plane: harness.ControlPlane, namespace: str
) -> None:
    """Controllers make the ReplicaSet and Pods, the scheduler binds them to fake nodes, and kwok
    reports them Running: what the webhook tests stand on."""
    client.AppsV1Api(admin).create_namespaced_deployment(
        namespace, kubejson.body(_deployment(replicas=3))
    )
    apps, core = client.AppsV1Api(admin), client.CoreV1Api(admin)
    (replica_set,) = poll.until(
        lambda: apps.list_namespaced_replica_set(namespace).items, what="a ReplicaSet", timeout=60
    )
    assert _owner(replica_set) == "web"

    def running() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        phases = [p.status.phase if p.status else None for p in pods]
        return pods if phases == ["Running"] * 3 else []

    def all_ready() -> bool:
        # Polled until all three: the Deployment counts its ready replicas one by one.
        status = apps.read_namespaced_deployment(namespace=namespace, name="web").status
        return status is not None and status.ready_replicas == 3

    pods = poll.until(running, what="3 Running pods", timeout=60)
    assert {p.spec.node_name for p in pods} <= set(control_plane.node_names)
    assert replica_set.metadata is not None
    assert all(_owner(p) == replica_set.metadata.name for p in pods)
    poll.until(all_ready, what="the Deployment's 3 ready replicas", timeout=60)


def _alive(pid: int) -> bool:
    """Whether any thread of the process still runs. A killed multi-threaded process shows its
    leader as a zombie while other threads still tear down, holding its sockets."""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return False
    for thread in threads:
        with contextlib.suppress(FileNotFoundError):
            if (thread / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return True
    return False


def _listening(port: int) -> bool:
    """Whether any socket listens on the port, from the kernel's table. (A connect probe can lie:
    connecting to a free port of the ephemeral range may connect the probe to itself.)"""
    listen = "0A"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == listen and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_teardown_leaves_no_process_or_port(tmp_path: Path, how: signal.Signals) -> None:
    """The supervisor of `make cluster-up`, interrupted or killed outright: every component
    exits and no port is left listening (SIGKILL leaves it to PR_SET_PDEATHSIG)."""
    directory = tmp_path / "plane"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "cluster", "serve", str(directory)],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        poll.until((directory / "ready").exists, what="the control plane", timeout=180)
        state = json.loads((directory / "state.json").read_text())
        pids, ports = state["pids"].values(), state["ports"].values()
        assert all(_alive(pid) for pid in pids)
        assert any(_listening(port) for port in ports)
        supervisor.send_signal(how)
        supervisor.wait(timeout=60)
        poll.until(
            lambda: not any(_alive(pid) for pid in pids), what="every component to exit", timeout=30
        )
        assert not [port for port in ports if _listening(port)]
    finally:
        supervisor.kill()
        supervisor.wait()
        assert supervisor.stderr is not None
        print(supervisor.stderr.read().decode())  # pytest shows it if the test failed
