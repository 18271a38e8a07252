"""spec.injection.securityContext through the webhook, judged by the API server's own Pod
Security admission: server-side dry-run creates in a namespace that enforces restricted and in
one that enforces nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from cluster import kubejson, poll
from cluster.fixtures import NamespaceFactory
from cluster.workloads import (
    COMPLIANT,
    ENABLED,
    INJECTED,
    RESTRICTED,
    SKIPPED,
    PolicyFactory,
    app_pod,
    python_policy,
)

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]

# What OpenShift's restricted-v2 asks, with a user id from a namespace's assigned range.
GIVEN = {**COMPLIANT, "runAsUser": 1000710000}
LAX = {"runAsNonRoot": True, "readOnlyRootFilesystem": True}


def _dry_run(admin: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The pod the API server would store, after our webhook and Pod Security admission (a
    refusal raises ApiException)."""
    body = app_pod(name)
    body["spec"]["containers"][0]["securityContext"] = COMPLIANT
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(body), dry_run="All", _preload_content=False
    )
    pod: dict[str, Any] = kubejson.json_of(response)
    return pod


def _copy_context(pod: dict[str, Any]) -> dict[str, Any] | None:
    copies = [c for c in pod["spec"].get("initContainers") or () if c["name"] == "libinject-python"]
    return copies[0]["securityContext"] if copies else None


def test_a_given_context_is_applied_and_passes_restricted(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """The copy container carries exactly the policy's context, and the API server's Pod
    Security admission accepts the pod where restricted is enforced."""
    restricted, open_ = namespaces(labels=RESTRICTED), namespaces(labels=ENABLED)
    policies(python_policy("given-context", [restricted, open_],
                           injection={"securityContext": GIVEN}))  # fmt: skip
    for namespace in (restricted, open_):
        pod = _until_decided(admin, namespace)
        assert _copy_context(pod) == GIVEN
        assert json.loads(pod["metadata"]["annotations"][INJECTED])[0]["language"] == "python"


def test_a_context_restricted_would_refuse_skips_the_library_not_the_pod(
    admin: client.ApiClient, namespaces: NamespaceFactory, policies: PolicyFactory
) -> None:
    """A context without what restricted asks: where restricted is enforced the pod is
    accepted without the library and says why; where it is not, the context goes in as given."""
    restricted, open_ = namespaces(labels=RESTRICTED), namespaces(labels=ENABLED)
    policies(python_policy("lax-context", [restricted, open_], injection={"securityContext": LAX}))
    refused = _until_decided(admin, restricted)
    assert _copy_context(refused) is None
    skipped = refused["metadata"]["annotations"][SKIPPED]
    assert skipped.startswith("SecurityContextNotRestricted: python:"), skipped
    assert "allowPrivilegeEscalation must be false" in skipped
    assert _copy_context(_until_decided(admin, open_)) == LAX


def _until_decided(admin: client.ApiClient, namespace: str) -> dict[str, Any]:
    """Dry-run creates until the operator's index has the policy: the pod is injected, or
    skipped for a reason other than finding no policy."""

    def decided() -> dict[str, Any] | None:
        pod = _dry_run(admin, namespace, "probe")
        annotations = pod["metadata"].get("annotations") or {}
        skipped = annotations.get(SKIPPED, "NoMatchingPolicy")
        return pod if INJECTED in annotations or "NoMatchingPolicy" not in skipped else None

    return poll.until(decided, what=f"a decision in {namespace}", timeout=30)
