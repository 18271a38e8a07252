"""The operator's NetworkPolicy (manifests/base/networkpolicy.yaml), checked against the real
control plane: the server accepts it as written, it selects exactly the Deployment's pods, lets in
only the ports those pods listen on (the webhook from anywhere, metrics from the cluster's pods),
and lets out only the API server's ports. No network plugin runs here, so what is checked is what
the policy says, not packets."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.fixtures import OPERATOR_NAMESPACE, REPO
from cluster.kubectl import Kubectl
from cluster.manifests import dry_run_apply, one, render

pytestmark = pytest.mark.usefixtures("installed")


@pytest.fixture(scope="module")
def base(kubectl: Kubectl) -> list[dict[str, Any]]:
    return render(kubectl, REPO / "manifests")


def test_the_server_accepts_the_policy_as_written(
    kubectl: Kubectl, base: list[dict[str, Any]]
) -> None:
    policy = one(base, "NetworkPolicy", "libinject-operator")
    assert policy["metadata"]["namespace"] == OPERATOR_NAMESPACE
    [kept] = dry_run_apply(kubectl, [policy])
    assert kept["spec"] == policy["spec"]


def test_it_admits_only_the_operators_ports_and_the_api_server(base: list[dict[str, Any]]) -> None:
    """Both directions are isolated. In: the webhook port from any address (the API server's is
    unknowable), the probe/metrics port from pods only; the ports are the container's own, by
    name, so a renamed or renumbered port cannot silently open another. Out: TCP 443 and 6443
    (the API server), nothing else (no DNS: the clients dial the Service IP)."""
    policy = one(base, "NetworkPolicy", "libinject-operator")["spec"]
    deployment = one(base, "Deployment", "libinject-operator")
    template = deployment["spec"]["template"]
    assert policy["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert policy["podSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]

    (container,) = template["spec"]["containers"]
    declared = {(p["name"], p["protocol"]) for p in container["ports"]}
    admitted = {(p["port"], p["protocol"]) for rule in policy["ingress"] for p in rule["ports"]}
    assert admitted == declared
    sources = {rule["ports"][0]["port"]: rule.get("from") for rule in policy["ingress"]}
    assert sources == {"webhook": None, "probes": [{"namespaceSelector": {}}]}

    (egress,) = policy["egress"]
    assert "to" not in egress
    assert {(p["port"], p["protocol"]) for p in egress["ports"]} == {(443, "TCP"), (6443, "TCP")}
