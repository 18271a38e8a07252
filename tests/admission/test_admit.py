"""The webhook's core never blocks a pod: it injects when the engine can decide, and otherwise
admits the pod without a library and says why on it (or, if even that fails, as it came)."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from builders import pod, policy
from libinject.admission import Admission, Caches, admit
from libinject.engine.decision import Code
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import INSTRUMENTED_LABEL, SKIPPED_ANNOTATION
from libinject.engine.settings import EngineSettings

ENABLED = {"libinject.dev/inject": "enabled"}
CACHES = Caches(index=PolicyIndex([policy()]), namespaces={"shop": ENABLED, "plain": {}})


class _FailingIndex(PolicyIndex):
    """A stand-in for a bug inside the engine: planning any namespace raises `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__([policy()])
        self.error = error

    def plan(self, namespace: Namespace) -> Any:  # noqa: ARG002 - the engine's signature
        raise self.error


def _admit(target: dict[str, Any], namespace: str, caches: Caches | None = CACHES) -> Admission:
    return admit(target, namespace=namespace, caches=caches, settings=EngineSettings())


def _record_only(admission: Admission, before: dict[str, Any]) -> None:
    """The patch only records the skip: the pod's spec is untouched and the patch applies."""
    assert all(op["path"].startswith("/metadata/") for op in admission.result.patch)
    after = jsonpatch.apply_patch(before, admission.result.patch)
    assert after["spec"] == before["spec"]
    assert after["metadata"]["labels"][INSTRUMENTED_LABEL] == "false"
    assert after["metadata"]["annotations"][SKIPPED_ANNOTATION].startswith(admission.outcome)


def test_injects_with_the_namespace_of_the_request() -> None:
    """Pods made by controllers have no namespace in their body: the request's is used."""
    target = pod()
    assert "namespace" not in target["metadata"]
    admission = _admit(target, "shop")
    assert admission.outcome is Code.INJECTED
    assert admission.error is None
    assert admission.result.decision.namespace == "shop"


@pytest.mark.parametrize(
    ("namespace", "caches", "outcome"),
    [
        pytest.param("shop", None, Code.NOT_READY, id="caches-not-primed"),
        pytest.param("new-ns", CACHES, Code.NAMESPACE_UNKNOWN, id="namespace-not-cached-yet"),
    ],
)
def test_undecidable_pods_are_admitted_with_a_reason(
    namespace: str, caches: Caches | None, outcome: Code
) -> None:
    before = pod()
    admission = _admit(before, namespace, caches)
    assert admission.outcome is outcome
    assert admission.error is None
    _record_only(admission, before)


def test_excluded_namespaces_are_not_even_annotated() -> None:
    admission = _admit(pod(), "kube-system", caches=None)
    assert admission.outcome is Code.NAMESPACE_EXCLUDED
    assert admission.result.patch == []


def test_a_bug_in_the_engine_admits_the_pod_and_keeps_the_error() -> None:
    before = pod()
    broken = Caches(index=_FailingIndex(KeyError("boom")), namespaces={"shop": ENABLED})
    admission = _admit(before, "shop", broken)
    assert admission.outcome is Code.INTERNAL_ERROR
    assert isinstance(admission.error, KeyError)
    assert "KeyError" in admission.result.decision.reason.message
    _record_only(admission, before)


def test_a_pod_too_broken_to_annotate_is_admitted_as_it_came() -> None:
    """Metadata that is not a mapping cannot take the skip record: the decision (for the log
    line and the metrics) names the field instead."""
    malformed = {"metadata": ["not", "a", "map"], "spec": {"containers": []}}
    admission = _admit(malformed, "shop")
    assert admission.outcome is Code.MALFORMED_POD
    assert admission.result.decision.reason.message == "metadata: expected a mapping, got a list"
    assert admission.error is None
    assert admission.result.patch == []
    assert admission.result.pod == malformed


def test_the_error_message_on_the_pod_is_bounded() -> None:
    verbose = Caches(index=_FailingIndex(ValueError("x" * 10_000)), namespaces={"shop": ENABLED})
    admission = _admit(pod(), "shop", verbose)
    assert len(admission.result.decision.reason.message) <= 300
