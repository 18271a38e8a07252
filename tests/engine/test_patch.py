"""The patch-writing edits of `engine.patch`, each checked the same way: the operations, applied by
an independent library (jsonpatch) to the document as it was, give the edited document; and the
edit changed no object it did not own (the input and every operation's value stay as they were)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonpatch
import pytest

from libinject.engine import patch
from libinject.engine.patch import Operation

Edit = Callable[[dict[str, Any], list[Operation]], None]


def edited(document: dict[str, Any], *edits: Edit) -> tuple[dict[str, Any], list[Operation]]:
    """The edited copy of `document` and its operations, checked as the module docstring says."""
    before = copy.deepcopy(document)
    result = dict(document)  # the caller owns the top level only
    ops: list[Operation] = []
    values = []
    for edit in edits:
        edit(result, ops)
        values.append([copy.deepcopy(op) for op in ops])
    assert document == before, "the input was changed"
    assert ops == values[-1], "an operation's value changed after it was written"
    assert jsonpatch.apply_patch(copy.deepcopy(before), copy.deepcopy(ops)) == result
    return result, ops


def paths(ops: list[Operation]) -> list[tuple[str, str]]:
    return [(op["op"], op["path"]) for op in ops]


def test_put_adds_a_new_key_and_replaces_an_existing_one() -> None:
    doc, ops = edited(
        {"a": "1"},
        lambda d, o: patch.put(o, d, "a", "2", at=""),
        lambda d, o: patch.put(o, d, "b", "3", at=""),
    )
    assert doc == {"a": "2", "b": "3"}
    assert paths(ops) == [("replace", "/a"), ("add", "/b")]


@pytest.mark.parametrize(
    ("key", "token"),
    [("libinject.dev/injected", "libinject.dev~1injected"), ("a~b/c", "a~0b~1c"), ("~1", "~01")],
)
def test_keys_are_escaped_as_json_pointer_tokens(key: str, token: str) -> None:
    """`~` is escaped before `/`, so a key holding `~1` is not read back as `/`."""
    _, ops = edited({"m": {}}, lambda d, o: patch.update(o, d, "m", {key: "v"}, at=""))
    assert paths(ops) == [("add", f"/m/{token}")]


def test_update_sets_replaces_removes_and_skips_unchanged_keys() -> None:
    document = {"meta": {"annotations": {"keep": "1", "same": "x", "old": "y", "n": "2"}}}
    changes = {"annotations": {"same": "x", "old": None, "gone": None, "n": "3", "new": "4"}}
    doc, ops = edited(document, lambda d, o: patch.update(o, d, "meta", changes, at=""))
    assert doc == {"meta": {"annotations": {"keep": "1", "same": "x", "n": "3", "new": "4"}}}
    assert paths(ops) == [
        ("remove", "/meta/annotations/old"),
        ("replace", "/meta/annotations/n"),
        ("add", "/meta/annotations/new"),
    ]


@pytest.mark.parametrize(
    ("document", "created"),
    [
        ({}, "/metadata"),
        ({"metadata": None}, "/metadata"),
        ({"metadata": {"name": "web"}}, "/metadata/annotations"),
        ({"metadata": {"annotations": None}}, "/metadata/annotations"),
    ],
    ids=["absent", "null", "absent-below", "null-below"],
)
def test_update_creates_an_absent_or_null_map_whole_in_one_operation(
    document: dict[str, Any], created: str
) -> None:
    """Created once, holding every key set and none of those removed."""
    changes = {"annotations": {"a": "1", "stale": None, "b": "2"}}
    doc, ops = edited(document, lambda d, o: patch.update(o, d, "metadata", changes, at=""))
    assert doc["metadata"]["annotations"] == {"a": "1", "b": "2"}
    assert paths(ops) == [("add", created)]


def test_append_writes_each_item_at_its_index() -> None:
    doc, ops = edited(
        {"env": [{"name": "A"}, {"name": "B"}]},
        lambda d, o: patch.append(o, d, "env", [{"name": "C"}, {"name": "D"}], at=""),
        lambda d, o: patch.append(o, d, "env", [{"name": "E"}], at=""),
    )
    assert [e["name"] for e in doc["env"]] == ["A", "B", "C", "D", "E"]
    assert paths(ops) == [("add", "/env/2"), ("add", "/env/3"), ("add", "/env/4")]


@pytest.mark.parametrize("document", [{}, {"env": None}], ids=["absent", "null"])
def test_append_creates_an_absent_or_null_list_once(document: dict[str, Any]) -> None:
    """The list is created by one operation holding the first items; later items are added at
    their indexes, and the creating operation's value does not grow with them."""
    doc, ops = edited(
        document,
        lambda d, o: patch.append(o, d, "env", [{"name": "A"}, {"name": "B"}], at=""),
        lambda d, o: patch.append(o, d, "env", [{"name": "C"}], at=""),
    )
    assert [e["name"] for e in doc["env"]] == ["A", "B", "C"]
    assert ops[0] == {"op": "add", "path": "/env", "value": [{"name": "A"}, {"name": "B"}]}
    assert paths(ops[1:]) == [("add", "/env/2")]


def test_append_of_nothing_writes_nothing() -> None:
    doc, ops = edited({}, lambda d, o: patch.append(o, d, "env", [], at=""))
    assert (doc, ops) == ({}, [])


def test_insert_shifts_what_follows_and_later_paths_see_the_shift() -> None:
    """Operations apply in order: after an insert at 0, the item that was at 0 is at 1."""

    def edit_mesh(document: dict[str, Any], ops: list[Operation]) -> None:
        mesh = document["inits"][1] = dict(document["inits"][1])  # owned, as the engine's are
        patch.append(ops, mesh, "env", [{"name": "A"}], at="/inits/1")

    doc, ops = edited(
        {"inits": [{"name": "mesh"}]},
        lambda d, o: patch.insert(o, d, "inits", {"name": "ours"}, index=0, at=""),
        edit_mesh,
    )
    assert doc == {"inits": [{"name": "ours"}, {"name": "mesh", "env": [{"name": "A"}]}]}
    assert paths(ops) == [("add", "/inits/0"), ("add", "/inits/1/env")]


@pytest.mark.parametrize("document", [{}, {"inits": None}], ids=["absent", "null"])
def test_insert_creates_an_absent_or_null_list_once(document: dict[str, Any]) -> None:
    doc, ops = edited(
        document, lambda d, o: patch.insert(o, d, "inits", {"name": "ours"}, index=0, at="")
    )
    assert doc == {"inits": [{"name": "ours"}]}
    assert paths(ops) == [("add", "/inits")]
