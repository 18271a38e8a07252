"""The shape of a pod, as far as the engine reads it: one declarative table, one checker.

Everything the engine (and the CLI's workload and namespace handling) reads from a pod is
declared in the table below with its JSON type. A pod that breaks the table is refused before
anything reads it, with the field named the way the API server names fields
(`spec.containers[0].env[2].value: expected a string, got an integer`), instead of failing
somewhere inside the engine. Fields the table does not declare are never read and so never
checked: the API server judges those.

The checker recurses along the table only, never along the data, so its depth is the table's
(a few levels), whatever the pod holds.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from libinject.engine.quantity import parse_quantity

SHOWN_CHARACTERS = 40  # of a refused value quoted in a message


@dataclass(frozen=True)
class Obj:
    """A mapping with these fields; others are allowed and not looked at. A field that is
    null counts as absent, as in the API; a required one must be present and not empty."""

    fields: Mapping[str, Schema] = field(default_factory=dict)
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ListOf:
    item: Schema


@dataclass(frozen=True)
class MapOf:
    """A mapping with string keys and values of one schema (null values allowed)."""

    value: Schema


@dataclass(frozen=True)
class Quantity:
    """A resource quantity: a string such as 500m or 1Gi, or a plain number."""


Schema = Obj | ListOf | MapOf | Quantity | type[str] | type[int] | type[bool]

STRINGS = MapOf(str)
METADATA = Obj(
    {
        "name": str,
        "generateName": str,
        "namespace": str,
        "labels": STRINGS,
        "annotations": STRINGS,
    }
)
ENV_VAR = Obj({"name": str, "value": str, "valueFrom": Obj()})
VOLUME_MOUNT = Obj({"name": str, "mountPath": str, "subPath": str, "readOnly": bool})
RESOURCES = Obj({"requests": MapOf(Quantity()), "limits": MapOf(Quantity())})
CONTAINER = Obj(
    {
        "name": str,
        "image": str,
        "env": ListOf(ENV_VAR),
        "envFrom": ListOf(Obj()),
        "volumeMounts": ListOf(VOLUME_MOUNT),
        "resources": RESOURCES,
        "restartPolicy": str,
        "securityContext": Obj({"runAsUser": int, "runAsNonRoot": bool}),
    },
    required=frozenset({"name"}),
)
POD_SPEC = Obj(
    {
        "containers": ListOf(CONTAINER),
        "initContainers": ListOf(CONTAINER),
        "ephemeralContainers": ListOf(CONTAINER),
        "volumes": ListOf(Obj({"name": str})),
        "securityContext": Obj({"runAsUser": int, "runAsNonRoot": bool}),
        "nodeSelector": STRINGS,
        "os": Obj({"name": str}),
    }
)
POD = Obj({"metadata": METADATA, "spec": POD_SPEC})


@dataclass(frozen=True)
class ShapeError:
    """The first field, in document order, whose value does not fit the table."""

    path: str  # `spec.containers[0].env[2].value`; empty for the object itself
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


def pod_problem(pod: Any) -> ShapeError | None:
    return problem(pod, POD)


def recordable(pod: Any) -> bool:
    """Whether the pod's metadata can take the skip record (an annotation and a label)."""
    if not isinstance(pod, Mapping):
        return False
    meta = pod.get("metadata")
    if meta is None:
        return True
    return isinstance(meta, Mapping) and all(
        isinstance(meta.get(key), Mapping | None) for key in ("labels", "annotations")
    )


def problem(value: Any, schema: Schema, path: str = "") -> ShapeError | None:
    """The first place where `value` breaks `schema`, or None."""
    if isinstance(schema, Obj):
        return _object(value, schema, path)
    if isinstance(schema, ListOf):
        return _list(value, schema, path)
    if isinstance(schema, MapOf):
        return _map(value, schema, path)
    return _scalar(value, schema, path)


def _scalar(value: Any, schema: Quantity | type, path: str) -> ShapeError | None:
    if isinstance(schema, Quantity):
        return None if _is_quantity(value) else _wrong(value, "a quantity such as 500m", path)
    if isinstance(value, schema) and not (schema is int and isinstance(value, bool)):
        return None
    return _wrong(value, _NAMES[schema], path)


def _list(value: Any, schema: ListOf, path: str) -> ShapeError | None:
    if not isinstance(value, list):
        return _wrong(value, "a list", path)
    items = (problem(item, schema.item, f"{path}[{index}]") for index, item in enumerate(value))
    return next((found for found in items if found is not None), None)


def _object(value: Any, schema: Obj, path: str) -> ShapeError | None:
    if not isinstance(value, Mapping):
        return _wrong(value, "a mapping", path)
    if bad_key := _non_string_key(value, path):
        return bad_key
    for name in schema.required:
        if value.get(name) in (None, ""):
            return ShapeError(_join(path, name), "required")
    for name, child in schema.fields.items():
        found = None if value.get(name) is None else problem(value[name], child, _join(path, name))
        if found is not None:
            return found
    return None


def _map(value: Any, schema: MapOf, path: str) -> ShapeError | None:
    if not isinstance(value, Mapping):
        return _wrong(value, "a mapping", path)
    if bad_key := _non_string_key(value, path):
        return bad_key
    for key, item in value.items():
        found = None if item is None else problem(item, schema.value, f"{path}[{key}]")
        if found is not None:
            return found
    return None


def _non_string_key(value: Mapping[Any, Any], path: str) -> ShapeError | None:
    for key in value:
        if not isinstance(key, str):
            return ShapeError(path, f"the key {_show(key)} is {_kind(key)}, expected a string")
    return None


def _is_quantity(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        parse_quantity(str(value))
    except ValueError:  # also a number too long for int(): Python bounds those
        return False
    return True


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _wrong(value: Any, expected: str, path: str) -> ShapeError:
    got = _kind(value)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        got = f"{got} ({_show(value)})"
    return ShapeError(path, f"expected {expected}, got {got}")


def _show(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 128:  # str() of a huge int may raise
        return "a number of more than 38 digits"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


_NAMES: dict[Any, str] = {str: "a string", int: "an integer", bool: "a boolean"}


def _kind(value: Any) -> str:
    """What a YAML or JSON loader produced, in words."""
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (Mapping, "a mapping"),
        (list, "a list"),
        (type(None), "null"),
        (datetime.datetime, "a timestamp"),
        (datetime.date, "a date"),
        (bytes, "binary data"),
        ((set, frozenset), "a set"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)
