"""The shape of the objects the offline commands read, in the engine's table (engine.shape).

Every document is a Kubernetes object (string apiVersion and kind, metadata as the engine reads
it); a List's items are objects; a workload's pod template sits where its kind keeps it, and is
a pod as the engine reads it. Checked once, when the input is loaded, so that what follows
(finding pods, reading namespaces and policies, the engine) reads only well-typed fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.cli.workloads import POD_PATHS, is_list
from libinject.engine import shape

OBJECT = shape.Obj({"apiVersion": str, "kind": str, "metadata": shape.METADATA})
LIST = shape.Obj({"items": shape.ListOf(shape.Obj())})


def _template(path: tuple[str, ...]) -> shape.Schema:
    """The schema that leads along `path` (every step a mapping) to a pod."""
    schema: shape.Schema = shape.POD
    for key in reversed(path):
        schema = shape.Obj({key: schema})
    return schema


WORKLOADS = {kind: _template(path) for kind, path in POD_PATHS.items()}


def problem(doc: Mapping[str, Any], path: str = "") -> shape.ShapeError | None:
    """The first field of `doc` (a List's items included) of the wrong type, or None."""
    found = shape.problem(doc, OBJECT, path)
    if found is not None:
        return found
    if is_list(doc):
        found = shape.problem(doc, LIST, path)
        if found is not None:
            return found
        where = f"{path}." if path else ""
        items = enumerate(doc.get("items") or [])
        inner = (problem(item, f"{where}items[{index}]") for index, item in items)
        return next((item for item in inner if item is not None), None)
    schema = WORKLOADS.get(doc.get("kind", ""))
    return None if schema is None else shape.problem(doc, schema, path)
