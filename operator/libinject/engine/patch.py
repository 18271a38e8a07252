"""RFC 6902 JSON patches written by the edits themselves.

Each edit of the pod goes through one of these functions, which makes the change and appends the
operation that makes it on the API server's side: every edit knows its path, so nothing compares
the pod before and after. Operations are applied in order, so each one's path (list indexes
included) is that of the pod as the operations before it left it. (Containers' env and mounts are
edited by `engine.containers.Edits` instead, which writes their operations once the containers'
paths are final.)

Edits are copy-on-write: a list or map is replaced by an edited copy, never changed in place. The
input pod is never touched, and an object that an operation holds as its value never changes
after the operation is written (a later edit replaces it instead). The caller owns `parent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Operation = dict[str, Any]


def escape(key: str) -> str:
    """A key as one JSON Pointer token: `~` and `/` (`libinject.dev/injected`) are escaped.
    Most keys (`env`, `volumeMounts`) hold neither, and are returned as they are."""
    if "~" not in key and "/" not in key:
        return key
    return key.replace("~", "~0").replace("/", "~1")


def add(ops: list[Operation], path: str, value: Any) -> None:
    ops.append({"op": "add", "path": path, "value": value})


def put(ops: list[Operation], parent: dict[str, Any], key: str, value: Any, *, at: str) -> None:
    """parent[key] = value; `at` is parent's path. `replace` for a key the map has: the
    operation says that the value changes rather than appears."""
    op = "replace" if key in parent else "add"
    parent[key] = value
    ops.append({"op": op, "path": f"{at}/{escape(key)}", "value": value})


def update(
    ops: list[Operation],
    parent: dict[str, Any],
    key: str,
    changes: Mapping[str, Any],
    *,
    at: str,
) -> None:
    """Merge `changes` into the map parent[key]: None removes a key, a mapping is merged one level
    down, anything else is set. A map that is absent or null is created whole, in one operation;
    keys that already hold their new value write no operation."""
    current, path = parent.get(key), f"{at}/{escape(key)}"
    if current is None:
        created = parent[key] = _created(changes)
        add(ops, path, created)
        return
    edited = parent[key] = dict(current)
    for name, value in changes.items():
        if value is None:
            if name in edited:
                del edited[name]
                ops.append({"op": "remove", "path": f"{path}/{escape(name)}"})
        elif isinstance(value, Mapping):
            update(ops, edited, name, value, at=path)
        elif name not in edited or edited[name] != value:
            put(ops, edited, name, value, at=path)


def _created(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: _created(value) if isinstance(value, Mapping) else value
        for name, value in changes.items()
        if value is not None
    }


def insert(
    ops: list[Operation],
    parent: dict[str, Any],
    key: str,
    item: Any,
    *,
    index: int,
    at: str,
) -> None:
    """Put `item` at `index` of the list parent[key], which is created holding it (one
    operation) when absent or null."""
    current = parent.get(key)
    if current is None:
        created = parent[key] = [item]
        add(ops, f"{at}/{escape(key)}", created)
        return
    parent[key] = [*current[:index], item, *current[index:]]
    add(ops, f"{at}/{escape(key)}/{index}", item)


def append(
    ops: list[Operation], parent: dict[str, Any], key: str, items: list[Any], *, at: str
) -> None:
    """Append `items` to the list parent[key]: one operation per item at its index, or one that
    creates the list when it is absent or null."""
    if not items:
        return
    current = parent.get(key)
    if current is None:
        created = parent[key] = list(items)
        add(ops, f"{at}/{escape(key)}", created)
        return
    path = f"{at}/{escape(key)}/"
    ops += [
        {"op": "add", "path": f"{path}{index}", "value": item}
        for index, item in enumerate(items, len(current))
    ]
    parent[key] = [*current, *items]
