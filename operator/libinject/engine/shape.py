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
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from libinject.engine.quantity import parse_quantity

SHOWN_CHARACTERS = 40  # of a refused value quoted in a message


@dataclass(frozen=True)
class Obj:
    """A mapping with these fields; others are allowed and not looked at. A field that is
    null counts as absent, as in the API; a required one must be present and not empty."""

    fields: Mapping[str, Schema] = field(default_factory=dict)
    required: frozenset[str] = frozenset()

    @functools.cached_property
    def exact(self) -> Mapping[str, type] | None:
        """For an object whose fields are all scalars or free-form objects (an env entry, a
        volume mount): the Python type each field must have, so a long list of them is checked
        without a call per entry. None for any other object."""
        if self.required:
            return None
        types: dict[str, type] = {}
        for name, schema in self.fields.items():
            if schema in (str, int, bool):
                types[name] = cast(type, schema)
            elif isinstance(schema, Obj) and not schema.fields and not schema.required:
                types[name] = dict
            else:
                return None
        return types


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
        "command": ListOf(str),
        "args": ListOf(str),
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
    """The first field (in the order of the pod's own keys) whose value does not fit."""

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
    """The first place where `value` breaks `schema`, or None; `path` is where `value` is."""
    found = _check(value, schema)
    if found is None:
        return None
    steps, message = found
    return ShapeError((path + "".join(reversed(steps))).lstrip("."), message)


# A problem found below: the steps to it (innermost first, such as ".value", "[2]", ".env") and
# what is wrong. Paths are put together only for a problem: a well-formed pod formats nothing.
_Found = tuple[list[str], str]


def _check(value: Any, schema: Schema) -> _Found | None:
    return _CHECKS[type(schema)](value, schema)


def _scalar(value: Any, schema: type) -> _Found | None:
    if isinstance(value, schema) and not (schema is int and isinstance(value, bool)):
        return None
    return [], _wrong(value, _NAMES[schema])


def _quantity(value: Any, schema: Quantity) -> _Found | None:  # noqa: ARG001 (one signature)
    if not isinstance(value, bool) and isinstance(value, str | int | float) and _is_quantity(value):
        return None
    return [], _wrong(value, "a quantity such as 500m")


def _object(value: Any, schema: Obj) -> _Found | None:
    if type(value) is not dict and not isinstance(value, Mapping):  # the ABC check is slow
        return [], _wrong(value, "a mapping")
    for name in schema.required:
        if value.get(name) in (None, ""):
            return [f".{name}"], "required"
    fields = schema.fields
    for name, item in value.items():  # the pod's own order: few of its fields are declared
        child = fields.get(name)
        if child is None or item is None or type(item) is child:  # the last: a scalar that fits
            continue
        found = _CHECKS[type(child)](item, child)  # _check inlined: this is the hot loop
        if found is not None:
            found[0].append(f".{name}")
            return found
    return None


def _list(value: Any, schema: ListOf) -> _Found | None:
    if not isinstance(value, list):
        return [], _wrong(value, "a list")
    item_schema = schema.item
    if isinstance(item_schema, Obj) and _all_exact(value, item_schema.exact):
        return None
    check = _CHECKS[type(item_schema)]  # one lookup for every item (env lists are long)
    for index, item in enumerate(value):
        found = check(item, item_schema)
        if found is not None:
            found[0].append(f"[{index}]")
            return found
    return None


def _all_exact(items: list[Any], types: Mapping[str, type] | None) -> bool:
    """Whether every item is a dict whose declared fields have exactly their types: the common
    case, answered in one loop; anything else (a subclass, a bool for an int, a mistake) goes
    through the full check, which names the field."""
    if types is None:
        return False
    for item in items:
        if type(item) is not dict:
            return False
        for name, value in item.items():
            expected = types.get(name)
            if expected is not None and value is not None and type(value) is not expected:
                return False
    return True


def _map(value: Any, schema: MapOf) -> _Found | None:
    """Keys are read (a label's name, an annotation's), so they must be strings too."""
    if type(value) is not dict and not isinstance(value, Mapping):
        return [], _wrong(value, "a mapping")
    quantities = type(schema.value) is Quantity
    if (quantities or schema.value is str) and _all_strings(value, quantities=quantities):
        return None
    for key, item in value.items():
        if not isinstance(key, str):
            return [], f"the key {_show(key)} is {_kind(key)}, expected a string"
        found = None if item is None else _check(item, schema.value)
        if found is not None:
            found[0].append(f"[{key}]")
            return found
    return None


def _all_strings(items: Mapping[Any, Any], *, quantities: bool) -> bool:
    """Whether every key and value is a string (with `quantities`, one such as 500m): labels,
    annotations and resources as they nearly always are, answered in one loop; anything else
    goes through the full check, which names the entry."""
    for key, item in items.items():
        if type(key) is not str or type(item) is not str:
            return False
        if quantities and not _is_quantity(item):
            return False
    return True


_CHECKS: dict[type, Callable[[Any, Any], _Found | None]] = {
    Obj: _object,
    ListOf: _list,
    MapOf: _map,
    Quantity: _quantity,
    type: _scalar,
}


@functools.lru_cache(maxsize=4096)
def _is_quantity(value: str | int | float) -> bool:
    """Pods repeat a few quantities, so answers are cached."""
    try:
        parse_quantity(str(value))
    except ValueError:  # also a number too long for int(): Python bounds those
        return False
    return True


def _wrong(value: Any, expected: str) -> str:
    got = _kind(value)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        got = f"{got} ({_show(value)})"
    return f"expected {expected}, got {got}"


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
