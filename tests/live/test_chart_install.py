"""The chart's life on a control plane of its own (the session's has libinject installed by
kubectl): `helm install`, a pod injected by an operator running as the operator's ServiceAccount,
`helm upgrade` with another value (the caBundle the operator wrote survives it, and injection goes
on), then `helm uninstall`, after which only what the README says stays is left: the CRDs (Helm
never deletes a chart's CRDs) and the peering object the operator made.

The operator runs from its image (`make image`'s, pushed to the tests' registry and named by
digest through the chart's `image` values): each replica is the pod the installed Deployment's
template makes, run by the pod runner as in cluster.imageoperator. The chart's `webhook.url` and
`replicas: 0` are the local overlay's two changes (replicas share this host's network, so the
test starts them itself); after the upgrade the replica is replaced from the new template, as the
rollout would.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config

from cluster import build, harness, poll
from cluster.fixtures import GROUP, OPERATOR_NAMESPACE, PLURAL
from cluster.helm import Helm
from cluster.imageoperator import DEPLOYMENT, ImageOperator, operator_runner
from cluster.kubectl import Kubectl
from cluster.operatorimage import OperatorImage
from cluster.workloads import ENABLED, INSTRUMENTED, app_pod, python_policy

CHART = Path(__file__).parents[2] / "charts" / "libinject"
RELEASE = "libinject"
# What uninstall leaves, cluster-scoped: the CRDs, and the peering object the operator creates.
STAYS = {
    ("customresourcedefinitions", f"{PLURAL}.{GROUP}"),
    ("customresourcedefinitions", "clusterkopfpeerings.kopf.dev"),
    ("clusterkopfpeerings.kopf.dev", "libinject"),
}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.ControlPlane]:
    with harness.ControlPlane(tmp_path_factory.mktemp("chart-plane")) as started:
        yield started


@pytest.fixture(scope="module")
def plane_kubectl(plane: harness.ControlPlane) -> Kubectl:
    return Kubectl(binary=build.binaries()["kubectl"], kubeconfig=plane.kubeconfig)


def create(admin: Kubectl, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    scope = [f"--namespace={namespace}"] if namespace else []
    out = admin("create", *scope, "-o", "json", "-f", "-", stdin=json.dumps(body)).stdout
    created: dict[str, Any] = json.loads(out)
    return created


def injected_pod(admin: Kubectl, namespace: str, name: str) -> bool:
    """Creates a pod named after `name`; whether the webhook injected it (polled by the caller
    until it does: the operator answers once its caches are primed)."""
    body = app_pod(name)
    body["metadata"]["generateName"] = f"{body['metadata'].pop('name')}-"  # one per attempt
    pod = create(admin, body, namespace)
    return bool(pod["metadata"].get("labels", {}).get(INSTRUMENTED) == "true")


def webhook(admin: Kubectl) -> dict[str, Any]:
    out = admin("get", "mutatingwebhookconfiguration", "libinject", "-o", "json").stdout
    hook: dict[str, Any] = json.loads(out)["webhooks"][0]
    return hook


def left_cluster_wide(admin: Kubectl) -> set[tuple[str, str]]:
    """Every cluster-scoped object of ours (named libinject...) or of our API groups."""
    found = set()
    for resource in (
        "customresourcedefinitions",
        "clusterkopfpeerings.kopf.dev",
        "clusterroles",
        "clusterrolebindings",
        "mutatingwebhookconfigurations",
        "namespaces",
        "csidrivers",
    ):
        names = admin("get", resource, "-o", "name", check=False).stdout.split()
        for name in (n.split("/", 1)[1] for n in names):
            if "libinject" in name or name.endswith(".kopf.dev"):
                found.add((resource, name))
    return found


def installed_template(admin: Kubectl) -> dict[str, Any]:
    """The pod template of the Deployment the release installed."""
    out = admin("get", "deployment", DEPLOYMENT, f"--namespace={OPERATOR_NAMESPACE}", "-o", "json")
    template: dict[str, Any] = json.loads(out.stdout)["spec"]["template"]
    return template


def test_install_inject_upgrade_uninstall(
    helm: Helm,
    plane: harness.ControlPlane,
    plane_kubectl: Kubectl,
    operator_image: OperatorImage,
    crane: Path,
    tmp_path: Path,
) -> None:
    admin = plane_kubectl
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    # The release record in `default`; the chart's objects say their own namespace.
    release = functools.partial(replace(helm, kubeconfig=plane.kubeconfig), "--namespace=default")
    port = harness.free_port()
    url = f"https://127.0.0.1:{port}/mutate-pods"
    repository, digest = operator_image.reference.split("@")
    release("install", RELEASE, str(CHART), "--wait", "--timeout=120s",
            f"--set=webhook.url={url}", "--set=replicas=0",
            f"--set=image.repository={repository}", f"--set=image.digest={digest}")  # fmt: skip
    runner = operator_runner(plane, admin=api, crane=crane, template=installed_template(admin),
                             directory=tmp_path / "pods")  # fmt: skip

    def replica(name: str) -> ImageOperator:
        """A replica of the installed Deployment, from the image its template names."""
        template = installed_template(admin)
        (container,) = template["spec"]["containers"]
        assert container["image"] == operator_image.reference
        started = ImageOperator(admin=api, runner=runner, template=template,
                                image=container["image"], node=plane.node_names[0],
                                webhook_port=port, name=name)  # fmt: skip
        return started.start().wait_ready()

    operator = replica("installed")
    try:
        create(admin, {"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "shop", "labels": ENABLED}})  # fmt: skip
        create(admin, python_policy("shop", ["shop"]))
        poll.until(
            lambda: injected_pod(admin, "shop", "before"), what="an injected pod", timeout=60
        )
        bundle = webhook(admin)["clientConfig"].get("caBundle")
        assert bundle  # written by the operator, not by the chart

        release("upgrade", RELEASE, str(CHART), "--reuse-values", "--wait",
                "--set=webhook.timeoutSeconds=5")  # fmt: skip
        hook = webhook(admin)
        assert hook["timeoutSeconds"] == 5
        assert hook["clientConfig"]["caBundle"] == bundle  # the upgrade kept what it never set
        operator.stop()
        operator = replica("upgraded")
        assert injected_pod(admin, "shop", "after-upgrade")
    finally:
        operator.stop()

    release("uninstall", RELEASE, "--wait", "--timeout=120s")
    admin("wait", "--for=delete", f"namespace/{OPERATOR_NAMESPACE}", "--timeout=120s", check=False)
    assert not release("list", "--all-namespaces", "--short").stdout.strip()
    # Helm's release records (Secrets labelled owner=helm) went with the release.
    assert not admin("get", "secrets", "--all-namespaces", "-l", "owner=helm", "-o", "name").stdout
    assert left_cluster_wide(admin) == STAYS
