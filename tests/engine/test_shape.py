"""The pod shape check (libinject.engine.shape) and the engine's refusal of malformed pods."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from builders import ENABLED, pod, policy
from hostile import MALFORMED_PODS, RICH_POD, WRONG_VALUES
from libinject.engine import shape
from libinject.engine.decision import Code
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import INSTRUMENTED_LABEL, SKIPPED_ANNOTATION, inject
from libinject.engine.settings import EngineSettings

INDEX = PolicyIndex([policy(), policy("j", libraries=[{"language": "java", "version": "1.56.0"}])])


def _inject(target: Any, namespace: Namespace = ENABLED) -> Any:
    return inject(target, namespace=namespace, index=INDEX, settings=EngineSettings())


def test_a_rich_valid_pod_fits_and_is_injected() -> None:
    """The hostile cases break one field each of this pod, so it must itself be fine."""
    assert shape.pod_problem(RICH_POD) is None
    assert _inject(RICH_POD).decision.reason.code is Code.INJECTED


@pytest.mark.parametrize(("target", "field"), [c[1:] for c in MALFORMED_PODS],
                         ids=[c[0] for c in MALFORMED_PODS])  # fmt: skip
def test_each_malformed_pod_is_refused_naming_the_field(target: dict[str, Any], field: str) -> None:
    """The engine refuses the pod before reading it: no library, and the reason names the
    field; where the metadata can hold it, the reason is on the pod and nothing else changes."""
    found = shape.pod_problem(target)
    assert found is not None
    assert found.path == field
    before = copy.deepcopy(target)
    result = _inject(target)
    assert target == before, "the input is never changed"
    reason = result.decision.reason
    assert reason.code is Code.MALFORMED_POD
    assert reason.message.startswith(f"{field}: ")
    assert reason.subject == field
    if shape.recordable(target):
        meta = result.pod["metadata"]
        assert meta["annotations"][SKIPPED_ANNOTATION] == f"MalformedPod: {reason.message}"
        assert meta["labels"][INSTRUMENTED_LABEL] == "false"
        assert all(op["path"].startswith("/metadata/") for op in result.patch)
    else:
        assert (result.pod, result.patch) == (target, [])


def test_a_malformed_pod_in_a_namespace_not_enabled_is_not_touched() -> None:
    target = MALFORMED_PODS[0][1]
    result = _inject(target, Namespace("plain", {}))
    assert result.decision.reason.code is Code.NAMESPACE_NOT_ENABLED
    assert result.patch == []


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON-like value, the value itself included."""
    yield path
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        yield from _paths(child, (*path, key))


def _replaced(target: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(target)
    parent = copied
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return copied


@pytest.mark.parametrize("path", list(_paths(RICH_POD))[1:], ids=str)
def test_any_value_anywhere_never_breaks_the_engine(path: tuple[Any, ...]) -> None:
    """The class, not the examples: every field of a pod that sets all the engine reads, given a
    value of every JSON type, is either read fine or refused as MalformedPod; nothing raises.
    A field the engine reads but the shape table lacks fails here."""
    for value in WRONG_VALUES:
        result = _inject(_replaced(RICH_POD, path, value))
        assert result.decision.reason.code is not None


def test_the_checker_does_not_follow_deep_data() -> None:
    """It walks the table, not the data: a 100,000-deep value in a field it does not declare
    is not visited (and so cannot exhaust Python's recursion limit)."""
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    target = pod()
    target["spec"]["containers"][0]["lifecycle"] = deep
    assert shape.pod_problem(target) is None
    assert _inject(target).decision.reason.code is Code.INJECTED
