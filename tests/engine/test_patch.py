"""JSON patches from before/after pairs, checked by applying them with an independent library."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from libinject.engine.patch import diff

CASES = [
    ({"a": 1}, {"a": 1}),
    ({"a": 1}, {"a": 2}),
    ({"a": 1}, {}),
    ({}, {"metadata": {"annotations": {"libinject.dev/injected": "x"}}}),
    ({"l": [1, 2]}, {"l": [0, 1, 2]}),
    ({"l": [1, 2]}, {"l": [1, 2, 3]}),
    ({"l": [1, 2, 3]}, {"l": [1, 3]}),
    ({"l": [{"n": 1}, 2]}, {"l": [{"n": 5}, 2, 7]}),
    ({"a~b/c": 1}, {"a~b/c": 2}),
    ({"x": 1}, {"x": "1"}),
    ({"x": [1]}, {"x": {"y": 1}}),
]


@pytest.mark.parametrize(("before", "after"), CASES)
def test_patch_turns_before_into_after(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert jsonpatch.apply_patch(before, diff(before, after)) == after


def test_prepend_is_one_add_at_index_zero() -> None:
    before = {"initContainers": [{"name": "a"}, {"name": "b"}]}
    after = {"initContainers": [{"name": "ours"}, {"name": "a"}, {"name": "b"}]}
    assert diff(before, after) == [
        {"op": "add", "path": "/initContainers/0", "value": {"name": "ours"}}
    ]


def test_keys_are_escaped() -> None:
    (op,) = diff({}, {"libinject.dev/x~y": "1"})
    assert op["path"] == "/libinject.dev~1x~0y"


def test_equal_documents_give_no_operation() -> None:
    assert diff({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) == []


def test_an_insert_before_a_changed_named_item_never_renames_it() -> None:
    """Our copy container goes before a sidecar we also instrument: the patch adds ours and edits
    the sidecar in place, instead of rewriting the sidecar into ours (audit logs stay true)."""
    before = {"initContainers": [{"name": "mesh", "env": []}]}
    after = {"initContainers": [{"name": "ours"}, {"name": "mesh", "env": [{"name": "A"}]}]}
    ops = diff(before, after)
    assert ops == [
        {"op": "add", "path": "/initContainers/0", "value": {"name": "ours"}},
        {"op": "add", "path": "/initContainers/1/env/0", "value": {"name": "A"}},
    ]
    assert jsonpatch.apply_patch(before, ops) == after


def test_unnamed_or_reordered_lists_fall_back_to_the_positional_diff() -> None:
    for before, after in [
        (
            {"l": [{"name": "a"}, {"name": "b"}]},
            {"l": [{"name": "b"}, {"name": "x"}, {"name": "a"}]},
        ),
        ({"l": [{"v": 1}, {"v": 2}]}, {"l": [{"v": 0}, {"v": 1}, {"v": 3}]}),
    ]:
        assert jsonpatch.apply_patch(before, diff(before, after)) == after
