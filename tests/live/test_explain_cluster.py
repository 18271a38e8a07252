"""`libinject explain` against the running control plane: the objects, the policies, the
namespaces' labels and what `auto` means, read through a kubeconfig, give the verdict the
webhook gave the pods it admitted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from cluster import kubejson, poll
from cluster.fixtures import NamespaceFactory
from cluster.kubectl import Kubectl
from cluster.workloads import (
    ENABLED,
    INJECTED,
    PolicyFactory,
    app_pod,
    deployment,
    pod_names,
    python_policy,
    read_pod,
)
from libinject.api.types import GROUP, PLURAL, VERSION
from libinject.cli.main import main

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]


def _explain(capsys: pytest.CaptureFixture[str], kubeconfig: Path, *args: str) -> Any:
    code = main(["explain", *args, "--kubeconfig", str(kubeconfig), "-o", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _injected(decision: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (language["language"], language["choice"]["version"], language["choice"]["mode"],
         language["choice"]["policy"])
        for language in decision["languages"]
        if language["choice"] is not None and language["choice"]["skipped"] is None
    ]  # fmt: skip


def test_explain_reads_the_cluster_and_agrees_with_the_webhook(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    kubectl: Kubectl,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A Deployment whose pods the webhook injected: `explain deployment/checkout -n NS` and
    `explain pod/<one of them>` (its namespace from the kubeconfig's context) name the same
    library, version, mode and policy as the pods' record, the Deployment as the service, and
    image volumes as the cluster's versions decide them (not the offline "not known"); `-A` lists the Deployment once, not its ReplicaSet or
    pods; the pod's explanation says how the policy counts it (instrumented, then outdated once
    the spec changed); a name that does not exist is an error naming it."""
    namespace = namespaces(labels=ENABLED)
    explained = policies(python_policy("explained", [namespace], libraries=[
        {"language": "python", "version": "4.16.0", "allowedVersions": ["4.*"]}]))  # fmt: skip
    apps = client.AppsV1Api(admin)
    poll.until(
        lambda: _webhook_ready(admin, namespace), what="the policy in the webhook", timeout=30
    )
    apps.create_namespaced_deployment(namespace, kubejson.body(deployment("checkout", replicas=1)))
    [name] = poll.until(lambda: pod_names(admin, namespace), what="the pod", timeout=60)
    pod = read_pod(admin, namespace=namespace, name=name)
    [record] = json.loads(pod["metadata"]["annotations"][INJECTED])
    webhook = [(record["language"], record["version"], record["mode"], record["policy"])]

    [of_deployment] = _explain(capsys, kubectl.kubeconfig, "deployment/checkout", "-n", namespace)
    assert of_deployment["object"] == f"Deployment {namespace}/checkout"
    assert _injected(of_deployment) == webhook
    assert of_deployment["service_from"] == "Deployment checkout"
    [python] = of_deployment["languages"]
    assert "not known" not in python["choice"]["mode_reason"], "image volumes judged here"

    # Without -n, the kubeconfig context's namespace, as kubectl has it.
    in_context = _with_namespace(kubectl.kubeconfig, namespace, tmp_path / "kubeconfig")
    [of_pod] = _explain(capsys, in_context, f"pod/{name}")
    assert _injected(of_pod) == webhook
    assert of_pod["service_from"] == "Deployment checkout"
    # And how the policy counts the pod in its status: at the spec it has now; after a change
    # of the spec, outdated, in words too.
    assert of_pod["counted"] == {explained: "instrumented"}
    assert "counted" not in of_deployment  # a template is no pod the status counts
    change = {"spec": {"priority": 3}}
    client.CustomObjectsApi(admin).patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, explained, change
    )
    [of_pod] = _explain(capsys, in_context, f"pod/{name}")
    assert of_pod["counted"] == {explained: "outdated"}
    assert main(["explain", f"pod/{name}", "--kubeconfig", str(in_context)]) == 0
    assert (
        f"  counted by {explained}: outdated: injected at an older spec" in capsys.readouterr().out
    )

    everything = _explain(capsys, kubectl.kubeconfig, "-A")
    mine = [d["object"] for d in everything if f" {namespace}/" in d["object"]]
    assert mine == [f"Deployment {namespace}/checkout"]

    code = main(["explain", "deployment/absent", "-n", namespace, "--kubeconfig",
                 str(kubectl.kubeconfig)])  # fmt: skip
    assert code == 2
    assert "deployments/absent" in capsys.readouterr().err


def _with_namespace(kubeconfig: Path, namespace: str, path: Path) -> Path:
    """A copy of `kubeconfig` whose current context names `namespace`."""
    config = yaml.safe_load(kubeconfig.read_text())
    current = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    current["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(config))
    return path


def _webhook_ready(admin: client.ApiClient, namespace: str) -> bool:
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(app_pod("probe")), dry_run="All", _preload_content=False
    )
    return INJECTED in (kubejson.json_of(response)["metadata"].get("annotations") or {})
