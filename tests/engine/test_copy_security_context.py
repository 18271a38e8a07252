"""spec.injection.securityContext: the copy containers get it as given, and in a namespace that
enforces restricted a library whose context would fail that profile is skipped, never a pod the
API server refuses. The engine's restricted check is held to the upstream Pod Security library
(tests/tools/psacheck, the code the API server runs) over many contexts and pod contexts."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from builders import COMPLIANT_CONTAINER, ENABLED, RESTRICTED, container, pod, policy, run
from libinject.engine.decision import Code
from tools.gobuild import go_tool

# OpenShift's restricted-v2 wants this: everything restricted asks, and no user id of ours.
OPENSHIFT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _copy(pod_out: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod_out["spec"]["initContainers"] if c["name"] == "libinject-python")


def test_the_copy_container_gets_the_context_as_given() -> None:
    """No runAsUser of ours (the platform assigns one), no field the policy did not write."""
    rule = policy(injection={"securityContext": OPENSHIFT})
    for namespace in (ENABLED, RESTRICTED):
        result = run(pod(container(securityContext=COMPLIANT_CONTAINER)), rule, namespace=namespace)
        assert _copy(result.pod)["securityContext"] == OPENSHIFT


def test_every_field_is_written() -> None:
    given = {
        "runAsUser": 1000710000,
        "runAsGroup": 1000710000,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": False,
        "capabilities": {"drop": ["ALL", "NET_RAW"]},
        "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/copy.json"},
    }
    result = run(pod(), policy(injection={"securityContext": given}))
    assert _copy(result.pod)["securityContext"] == given


def test_without_an_override_the_context_is_libinjects() -> None:
    result = run(
        pod(container(securityContext=COMPLIANT_CONTAINER)), policy(), namespace=RESTRICTED
    )
    assert _copy(result.pod)["securityContext"]["runAsUser"] == 65532


def test_a_context_restricted_refuses_skips_the_library_and_says_why() -> None:
    """allowPrivilegeEscalation left out in a restricted namespace: the pod is admitted without
    the library, its decision naming what restricted asks; in a baseline namespace the same
    policy injects as given."""
    lax = {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    rule = policy(injection={"securityContext": lax})
    app = pod(container(securityContext=COMPLIANT_CONTAINER))
    refused = run(app, rule, namespace=RESTRICTED)
    assert refused.decision.injected == ()
    [language] = refused.decision.languages
    assert language.choice is not None
    assert language.choice.skipped is not None
    assert language.choice.skipped.code is Code.SECURITY_CONTEXT_NOT_RESTRICTED
    assert "allowPrivilegeEscalation must be false" in language.choice.skipped.message
    assert "seccompProfile must be RuntimeDefault or Localhost" in language.choice.skipped.message
    assert refused.pod["spec"] == app["spec"], "nothing of the library is added"
    assert _copy(run(app, rule, namespace=ENABLED).pod)["securityContext"] == lax


def test_the_pods_own_context_completes_the_containers() -> None:
    """runAsNonRoot and seccomp on the pod count for the copy container too, as restricted says."""
    partial = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    app = pod(
        container(securityContext=COMPLIANT_CONTAINER),
        securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    )
    result = run(app, policy(injection={"securityContext": partial}), namespace=RESTRICTED)
    assert result.decision.injected


@pytest.fixture(scope="module")
def psacheck() -> Path:
    return go_tool("psacheck")


CONTEXTS = [
    OPENSHIFT,
    {**{k: v for k, v in OPENSHIFT.items() if k != "runAsNonRoot"}, "runAsUser": 0},
    {**OPENSHIFT, "runAsNonRoot": False},
    {k: v for k, v in OPENSHIFT.items() if k != "runAsNonRoot"},
    {k: v for k, v in OPENSHIFT.items() if k != "seccompProfile"},
    {**OPENSHIFT, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
    {**OPENSHIFT, "capabilities": {"drop": ["NET_RAW"]}},
    {**OPENSHIFT, "allowPrivilegeEscalation": True},
    {"readOnlyRootFilesystem": True},
]
POD_CONTEXTS: list[dict[str, Any] | None] = [
    None,
    {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    {"runAsNonRoot": True, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
    {"runAsUser": 1000},
]  # fmt: skip


def test_the_restricted_check_agrees_with_pod_security(psacheck: Path) -> None:
    """For every policy context and pod context: where the engine injects in a restricted
    namespace, upstream Pod Security allows the pod; where it skips with
    SecurityContextNotRestricted, Pod Security refuses the pod the context as given would make
    (the same policy in a baseline namespace). Both outcomes occur."""
    injected, refused = [], []
    for given, pod_context in itertools.product(CONTEXTS, POD_CONTEXTS):
        app = pod(container(securityContext=COMPLIANT_CONTAINER))
        if pod_context is not None:
            app["spec"]["securityContext"] = pod_context
        rule = policy(injection={"securityContext": given})
        result = run(app, rule, namespace=RESTRICTED)
        if result.decision.injected:
            injected.append(result.pod)
        else:
            [language] = result.decision.languages
            assert language.choice is not None
            assert language.choice.skipped is not None
            assert language.choice.skipped.code is Code.SECURITY_CONTEXT_NOT_RESTRICTED
            # What the pod would be with the context as given.
            refused.append(run(app, rule, namespace=ENABLED).pod)
    assert injected
    assert refused
    for pods, allowed in ((injected, True), (refused, False)):
        done = subprocess.run(
            [str(psacheck), "restricted"], input=json.dumps(pods), capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        for verdict in json.loads(done.stdout):
            assert verdict["allowed"] is allowed, verdict
            if not allowed:
                assert "libinject-python" in " ".join(verdict["reasons"]), verdict
