"""Malformed pods through the webhook's core: admitted, never blocked, and the reason names the
field: on the pod (annotation and label) where its metadata can hold it, else in the decision
the log line and the metrics report, with the pod admitted exactly as it came."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from builders import policy
from hostile import MALFORMED_PODS
from libinject.admission import Caches, admit
from libinject.engine import shape
from libinject.engine.decision import Code
from libinject.engine.index import PolicyIndex
from libinject.engine.inject import INSTRUMENTED_LABEL, SKIPPED_ANNOTATION
from libinject.engine.settings import EngineSettings

CACHES = Caches(
    index=PolicyIndex([policy()]), namespaces={"shop": {"libinject.dev/inject": "enabled"}}
)


@pytest.mark.parametrize(("target", "field"), [c[1:] for c in MALFORMED_PODS],
                         ids=[c[0] for c in MALFORMED_PODS])  # fmt: skip
def test_malformed_pods_are_admitted_with_the_field_named(
    target: dict[str, Any], field: str
) -> None:
    before = copy.deepcopy(target)
    admission = admit(target, namespace="shop", caches=CACHES, settings=EngineSettings())
    assert admission.error is None, "a refusal, not a failure of ours"
    reason = admission.result.decision.reason
    assert reason.code is Code.MALFORMED_POD
    assert reason.message.startswith(f"{field}: ")
    if not shape.recordable(before):
        assert admission.result.patch == []
        assert admission.result.pod == before
        return
    after = jsonpatch.apply_patch(before, admission.result.patch)
    assert after["metadata"]["annotations"][SKIPPED_ANNOTATION] == f"MalformedPod: {reason.message}"
    assert after["metadata"]["labels"][INSTRUMENTED_LABEL] == "false"
    assert {k: v for k, v in after.items() if k != "metadata"} == {
        k: v for k, v in before.items() if k != "metadata"
    }, "nothing but the record changes"


@pytest.mark.parametrize(("caches", "outcome"), [(None, Code.NOT_READY),
                         (Caches(index=PolicyIndex([]), namespaces={}), Code.NAMESPACE_UNKNOWN)],
                         ids=["caches-not-primed", "namespace-not-cached"])  # fmt: skip
@pytest.mark.parametrize(
    "target", [c[1] for c in MALFORMED_PODS], ids=[c[0] for c in MALFORMED_PODS]
)
def test_malformed_pods_are_recorded_when_undecidable_too(
    target: dict[str, Any], caches: Caches | None, outcome: Code
) -> None:
    """Before the engine can decide, the record says why it did not; it only needs the metadata
    (not the spec) to be readable, and without even that the pod is admitted as it came."""
    before = copy.deepcopy(target)
    admission = admit(target, namespace="shop", caches=caches, settings=EngineSettings())
    assert admission.error is None
    assert admission.outcome is outcome
    if not shape.recordable(before):
        assert (admission.result.pod, admission.result.patch) == (before, [])
        return
    after = jsonpatch.apply_patch(before, admission.result.patch)
    assert after["metadata"]["annotations"][SKIPPED_ANNOTATION].startswith(outcome)
    assert after["spec"] == before["spec"]
