"""The patch `inject` writes as it edits: each operation at the path where the pod is edited, lists
and maps the pod lacks created by one operation, keys escaped, and the result exactly the pod the
engine returns (applied with jsonpatch, an independent implementation of RFC 6902)."""

from __future__ import annotations

import json
from typing import Any

import jsonpatch

from builders import JAVA, PYTHON, container, pod, policy, run
from libinject.engine.inject import (
    INJECTED_ANNOTATION,
    INSTRUMENTED_LABEL,
    SKIPPED_ANNOTATION,
    Result,
)


def applied(target: dict[str, Any], result: Result) -> dict[str, Any]:
    """The patch applied to a JSON copy of the input (JSON never shares an object twice)."""
    patched: dict[str, Any] = jsonpatch.apply_patch(json.loads(json.dumps(target)), result.patch)
    assert patched == result.pod
    return patched


def paths(result: Result, below: str) -> list[str]:
    return [op["path"] for op in result.patch if op["path"].startswith(below)]


def test_appended_env_entries_and_mounts_are_added_at_their_indexes() -> None:
    """The user's two env entries and one mount stay where they are; ours follow, one operation
    each, at the index each one gets."""
    user_env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    user_mount = {"name": "data", "mountPath": "/data"}
    target = pod(
        container(env=user_env, volumeMounts=[user_mount]),
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    result = run(target, policy())
    env = applied(target, result)["spec"]["containers"][0]["env"]
    assert env[:2] == user_env
    assert paths(result, "/spec/containers/0/env") == [
        f"/spec/containers/0/env/{index}" for index in range(2, len(env))
    ]
    assert paths(result, "/spec/containers/0/volumeMounts") == ["/spec/containers/0/volumeMounts/1"]
    assert paths(result, "/spec/volumes") == ["/spec/volumes/1"]


def test_what_the_pod_lacks_is_created_by_one_operation() -> None:
    """No metadata, no volumes, no init containers, a container with no env or mounts: each is
    created whole by one operation, and the second language adds to what the first created."""
    target = {"spec": {"containers": [container()]}}
    result = run(target, policy(libraries=[PYTHON, JAVA]))
    patched = applied(target, result)
    created = ["/metadata", "/spec/volumes", "/spec/initContainers"]
    created += ["/spec/containers/0/env", "/spec/containers/0/volumeMounts"]
    for path in created:
        assert [op["op"] for op in result.patch if op["path"] == path] == ["add"], path
    assert paths(result, "/metadata") == ["/metadata"]
    assert len(patched["spec"]["volumes"]) == 2
    assert paths(result, "/spec/volumes/") == ["/spec/volumes/1"]
    assert paths(result, "/spec/containers/0/volumeMounts/") == [
        "/spec/containers/0/volumeMounts/1"
    ]


def test_null_lists_are_created_by_one_operation_too() -> None:
    """`volumes:` with no items is null in YAML: the list replaces the null in one operation."""
    target = pod(container(env=None), volumes=None)
    result = run(target, policy())
    assert applied(target, result)["spec"]["volumes"][0]["name"] == "libinject-python"
    assert paths(result, "/spec/volumes") == ["/spec/volumes"]
    assert paths(result, "/spec/containers/0/env") == ["/spec/containers/0/env"]


def test_annotation_keys_are_escaped_and_others_left_alone() -> None:
    """Our keys hold `/` (`libinject.dev~1injected`); the user's, with `~` and `/`, get no
    operation; a stale skip record is removed by its escaped path, once."""
    annotations = {"example.com/a~b": "x", SKIPPED_ANNOTATION: "NoMatchingPolicy: old"}
    target = pod(annotations=annotations, labels={"app": "web"})
    result = run(target, policy())
    patched = applied(target, result)
    assert patched["metadata"]["annotations"]["example.com/a~b"] == "x"
    metadata_ops = [(op["op"], op["path"]) for op in result.patch if "/metadata/" in op["path"]]
    assert sorted(metadata_ops) == [
        ("add", "/metadata/annotations/libinject.dev~1injected"),
        ("add", "/metadata/labels/libinject.dev~1instrumented"),
        ("remove", "/metadata/annotations/libinject.dev~1injection-skipped"),
    ]


def test_a_record_already_there_is_replaced_and_an_equal_one_writes_nothing() -> None:
    """A pod skipped before (the label says false) and now injected: the label's value is
    replaced. Injected again with a stale label only: that label alone is written."""
    target = pod(labels={INSTRUMENTED_LABEL: "false"})
    result = run(target, policy())
    assert ("replace", "/metadata/labels/libinject.dev~1instrumented") in [
        (op["op"], op["path"]) for op in result.patch
    ]
    stale = json.loads(json.dumps(result.pod))
    stale["metadata"]["labels"][INSTRUMENTED_LABEL] = "false"
    again = run(stale, policy())
    assert again.patch == [
        {"op": "replace", "path": "/metadata/labels/libinject.dev~1instrumented", "value": "true"}
    ]
    assert again.pod["metadata"]["annotations"][INJECTED_ANNOTATION]


def test_a_load_variable_the_user_set_is_changed_in_place() -> None:
    """The user's PYTHONPATH keeps its index: one operation on its value, none on its name."""
    target = pod(container(env=[{"name": "PYTHONPATH", "value": "/app"}, {"name": "X"}]))
    result = run(target, policy())
    patched = applied(target, result)
    assert patched["spec"]["containers"][0]["env"][0]["value"] == "/opt/libinject/python:/app"
    assert [op for op in result.patch if op["path"].startswith("/spec/containers/0/env/0")] == [
        {
            "op": "replace",
            "path": "/spec/containers/0/env/0/value",
            "value": "/opt/libinject/python:/app",
        }
    ]
    assert not any(op["path"].startswith("/spec/containers/0/env/1") for op in result.patch)
