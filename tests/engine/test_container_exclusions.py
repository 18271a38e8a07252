"""A pod's `libinject.dev/exclude-containers` annotation: the containers it names get no library,
each with ContainerExcluded in the record, whatever the policy names; a name no container has is
warned about; a value that is no text names nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from builders import container, env_of, pod, policy, run
from libinject.engine.decision import Code

ANNOTATION = "libinject.dev/exclude-containers"


def _record(result: Any) -> dict[str, Any]:
    (record,) = json.loads(result.pod["metadata"]["annotations"]["libinject.dev/injected"])
    return dict(record)


@pytest.mark.parametrize("value", ["sidecar", " sidecar , ", "sidecar,istio-proxy"])
def test_the_named_containers_get_no_library_and_say_why(value: str) -> None:
    target = pod(container("app"), container("sidecar"), annotations={ANNOTATION: value})
    result = run(target, policy())
    record = _record(result)
    assert record["containers"] == ["app"]
    assert record["skippedContainers"] == {"sidecar": "ContainerExcluded"}
    assert "PYTHONPATH" not in env_of(result, "sidecar")
    assert "PYTHONPATH" in env_of(result, "app")
    (python,) = result.decision.languages
    assert python.choice is not None
    verdicts = {v.container: v.reason for v in python.choice.containers}
    assert verdicts["sidecar"].code is Code.CONTAINER_EXCLUDED
    assert ANNOTATION in verdicts["sidecar"].message


def test_an_exclusion_wins_over_the_policys_container_names() -> None:
    target = pod(container("app"), container("worker"), annotations={ANNOTATION: "worker"})
    result = run(target, policy(containerNames=["app", "worker"]))
    assert _record(result)["containers"] == ["app"]


def test_excluding_every_container_skips_the_library_with_the_reason() -> None:
    result = run(pod(annotations={ANNOTATION: "app"}), policy())
    assert result.decision.reason.code is Code.NO_CONTAINER_SELECTED
    assert (
        "ContainerExcluded"
        in result.pod["metadata"]["annotations"]["libinject.dev/injection-skipped"]
    )
    assert "initContainers" not in result.pod["spec"]


def test_a_name_no_container_has_is_warned_about() -> None:
    result = run(pod(annotations={ANNOTATION: "app,sidcar"}), policy())
    assert result.decision.warnings == (f"{ANNOTATION} names sidcar: no container of this pod",)


@pytest.mark.parametrize("value", [None, "", " , "])
def test_a_value_that_names_no_container_excludes_nothing(value: Any) -> None:
    target = pod()
    target["metadata"]["annotations"] = {ANNOTATION: value}
    result = run(target, policy())
    assert _record(result)["containers"] == ["app"]
    assert result.decision.warnings == ()


@pytest.mark.parametrize("value", [7, ["app"]])
def test_a_value_that_is_no_text_leaves_the_pod_as_it_came(value: Any) -> None:
    """An annotation is text in the API; a manifest's other value is refused by the shape check
    before anything is decided (MalformedPod), as for every other annotation."""
    target = pod()
    target["metadata"]["annotations"] = {ANNOTATION: value}
    result = run(target, policy())
    assert result.decision.reason.code is Code.MALFORMED_POD
    assert "initContainers" not in result.pod["spec"]
