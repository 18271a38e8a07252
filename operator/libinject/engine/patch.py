"""RFC 6902 JSON patches from a before/after pair of JSON-like documents.

The engine edits a copy of the pod and diffs it: one mechanism for every edit. Lists are diffed by
common prefix and suffix, which turns our appends and prepends into single `add` operations.
Operations hold the new document's values, not copies: treat both as read-only.
"""

from __future__ import annotations

from typing import Any

Operation = dict[str, Any]


def escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def diff(old: Any, new: Any, path: str = "") -> list[Operation]:
    if isinstance(old, dict) and isinstance(new, dict):
        return _diff_dicts(old, new, path)
    if isinstance(old, list) and isinstance(new, list):
        return _diff_lists(old, new, path)
    if old == new and type(old) is type(new):
        return []
    return [{"op": "replace", "path": path, "value": new}]


def _diff_dicts(old: dict[str, Any], new: dict[str, Any], path: str) -> list[Operation]:
    ops = [{"op": "remove", "path": f"{path}/{escape(key)}"} for key in old if key not in new]
    for key, value in new.items():
        if key not in old:
            ops.append({"op": "add", "path": f"{path}/{escape(key)}", "value": value})
        elif old[key] is not value:  # shared subtrees (see inject._editable_copy) are skipped
            ops.extend(diff(old[key], value, f"{path}/{escape(key)}"))
    return ops


def _diff_lists(old: list[Any], new: list[Any], path: str) -> list[Operation]:
    shorter = min(len(old), len(new))
    prefix = 0
    while prefix < shorter and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < shorter - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    old_mid, new_mid = old[prefix : len(old) - suffix], new[prefix : len(new) - suffix]
    if old_mid and new_mid and len(old_mid) != len(new_mid):
        by_name = _diff_named(old, new, path)
        if by_name is not None:
            return by_name
    paired = min(len(old_mid), len(new_mid))
    ops: list[Operation] = []
    for offset in range(paired):
        ops.extend(diff(old_mid[offset], new_mid[offset], f"{path}/{prefix + offset}"))
    start = prefix + paired
    ops += [{"op": "remove", "path": f"{path}/{start}"} for _ in old_mid[paired:]]
    ops += [
        {"op": "add", "path": f"{path}/{start + offset}", "value": item}
        for offset, item in enumerate(new_mid[paired:])
    ]
    return ops


def _diff_named(old: list[Any], new: list[Any], path: str) -> list[Operation] | None:
    """Lists of named objects (containers, volumes): an inserted item is one `add`, and each kept
    item is diffed against the item of the same name, not against whatever took its index.
    None when names are missing, repeated, or kept items were removed or reordered."""
    old_names, new_names = _names(old), _names(new)
    if old_names is None or new_names is None:
        return None
    position = {name: index for index, name in enumerate(old_names)}
    if [name for name in new_names if name in position] != old_names:
        return None
    ops: list[Operation] = []
    for index, (name, item) in enumerate(zip(new_names, new, strict=True)):
        if name in position:
            ops.extend(diff(old[position[name]], item, f"{path}/{index}"))
        else:
            ops.append({"op": "add", "path": f"{path}/{index}", "value": item})
    return ops


def _names(items: list[Any]) -> list[str] | None:
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if None in names or len(set(names)) != len(names):
        return None
    return names  # type: ignore[return-value]
