"""The patch the edits write does what the copy-and-diff patch did.

`tests/golden/patches/recorded.json` holds the patches of the engine as it was before the edits
wrote them (commit 2278ccf diffed a copy of the pod), for the hostile pods of tests/hostile.py and
the builders' pods under every language set and mode, in a plain and a restricted namespace, and
for the skip record. Both patches, applied to the same pod, must give the same pod: the operations
may differ, the pods the API server stores may not. (The golden inputs are compared the same way
by tests/cli/test_golden.py, against the pods recorded then.) UPDATE_GOLDEN=1 records today's
patches instead, for a deliberate change of the engine's output; review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from builders import ENABLED, RESTRICTED, plain_pods, pod, policy, restricted_pods, run
from hostile import MALFORMED_PODS, RICH_POD
from libinject.engine.decision import Code, Reason
from libinject.engine.index import Namespace
from libinject.engine.inject import INSTRUMENTED_LABEL, SKIPPED_ANNOTATION, Result, skip
from libinject.engine.limits import CONTAINER_KINDS as KINDS

RECORDED = Path(__file__).parents[1] / "golden" / "patches" / "recorded.json"
# Languages and modes: one language, and three at once in every mode.
DELIVERIES = (
    (("python",), "init-container"),
    (("java",), "csi"),
    (("python", "java", "nodejs"), "init-container"),
    (("python", "java", "nodejs"), "csi"),
    (("python", "java", "nodejs"), "image-volume"),
    (("dotnet", "ruby", "php"), "init-container"),
)
NOT_READY = Reason(Code.NOT_READY, "the operator's caches are not primed")

Call = Callable[[], Result]


def _injection(
    target: dict[str, Any], *, languages: tuple[str, ...], mode: str, namespace: Namespace
) -> Call:
    """Every language in one mode; into every container the pod names, native sidecars and
    ephemeral containers included (those are named but never touched)."""
    named = [c["name"] for kind in KINDS for c in target["spec"].get(kind) or ()]
    chosen = policy(
        libraries=[{"language": language, "version": "1.2.3"} for language in languages],
        injection={"mode": mode},
        containerNames=named,
    )
    return lambda: run(target, chosen, namespace=namespace)


def _malformed(target: dict[str, Any]) -> Call:
    return lambda: run(target, policy(injection={"mode": "csi"}))


def _skip(target: dict[str, Any]) -> Call:
    return lambda: skip(target, namespace="apps", reason=NOT_READY)


def _cases() -> dict[str, tuple[dict[str, Any], Call]]:
    """Each case's pod and the engine's call on it, by id: the rich pod in every delivery and
    namespace, the others with three languages in every mode."""
    cases: dict[str, tuple[dict[str, Any], Call]] = {}
    # Keys to escape, and a stale skip record that an injection removes.
    marked = {"example.com/a~b/c": "x", SKIPPED_ANNOTATION: "NoMatchingPolicy: old"}
    others = [
        ("no-metadata", {"spec": pod()["spec"]}),
        ("annotated", pod(annotations=marked, labels={INSTRUMENTED_LABEL: "false"})),
        *((f"restricted-{n}", target) for n, target in enumerate(restricted_pods())),
        ("plain-two-containers", plain_pods()[1]),
    ]
    deliveries = {"rich": product(DELIVERIES, (ENABLED, RESTRICTED))}
    deliveries |= {name: product(DELIVERIES[2:5], (ENABLED,)) for name, _ in others}
    for name, target in [("rich", RICH_POD), *others]:
        for (languages, mode), namespace in deliveries[name]:
            case = f"{name}/{'+'.join(languages)}/{mode}/{namespace.name}"
            call = _injection(target, languages=languages, mode=mode, namespace=namespace)
            cases[case] = target, call
        cases[f"skip/{name}"] = target, _skip(target)
    for name, target, _ in MALFORMED_PODS:
        cases[f"malformed/{name}"] = target, _malformed(target)
        cases[f"skip/{name}"] = target, _skip(target)
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[dict[str, Any]]]:
    if os.environ.get("UPDATE_GOLDEN"):
        today = {case: call().patch for case, (_, call) in CASES.items()}
        RECORDED.parent.mkdir(exist_ok=True)
        RECORDED.write_text(_one_operation_a_line(today))
    patches: dict[str, list[dict[str, Any]]] = json.loads(RECORDED.read_text())
    return patches


def _one_operation_a_line(patches: dict[str, list[dict[str, Any]]]) -> str:
    """JSON that reviews well: a change of output shows as the operations that changed."""
    cases = [
        f"{json.dumps(case)}: [\n"
        + ",\n".join(json.dumps(op, sort_keys=True) for op in ops)
        + "\n]"
        for case, ops in sorted(patches.items())
    ]
    return "{\n" + ",\n".join(cases) + "\n}\n"


def test_every_case_is_recorded(recorded: dict[str, list[dict[str, Any]]]) -> None:
    """A case without a recorded patch would compare nothing: record it deliberately."""
    assert sorted(recorded) == sorted(CASES), "rerun with UPDATE_GOLDEN=1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_patch_gives_the_pod_the_recorded_patch_gave(
    case: str, recorded: dict[str, list[dict[str, Any]]]
) -> None:
    """Applied to copies of the same pod, the recorded patch and today's give the same pod, and
    that pod is the one the engine returns."""
    target, call = CASES[case]
    result = call()
    before = jsonpatch.apply_patch(unshared(target), recorded[case])
    today = jsonpatch.apply_patch(unshared(target), unshared(result.patch))
    assert today == before
    assert result.pod == before


def unshared(value: Any) -> Any:
    """A deep copy in which no two places hold the same object, as in a pod decoded from JSON
    (a patch applied in place to a shared list would change each place). Keys are kept as
    they are: some hostile pods have keys JSON could not carry."""
    if isinstance(value, dict):
        return {key: unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unshared(item) for item in value]
    return value
