"""Reading the model's dataclasses: shared by the CRD renderer and the parser."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from libinject.api.fields import FIELD_KEY, Field, Quantity, Rule, json_name


@dataclass(frozen=True)
class Attr:
    """One dataclass field as both readers see it."""

    name: str
    key: str
    type: Any
    meta: Field
    required: bool
    default: Any


_ATTRS: dict[type[Any], tuple[Attr, ...]] = {}


def attrs_of(cls: type[Any]) -> tuple[Attr, ...]:
    """The fields of a model dataclass, with their metadata (computed once per class)."""
    if cls not in _ATTRS:
        _ATTRS[cls] = _read_attrs(cls)
    return _ATTRS[cls]


def _read_attrs(cls: type[Any]) -> tuple[Attr, ...]:
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(FIELD_KEY)
        if meta is None:
            raise TypeError(f"{cls.__name__}.{f.name} has no description")
        if f.default is not dataclasses.MISSING:
            required, default = False, f.default
        elif f.default_factory is not dataclasses.MISSING:
            required, default = False, f.default_factory()
        else:
            required, default = True, None
        found.append(Attr(f.name, json_name(f.name), hints[f.name], meta, required, default))
    return tuple(found)


def rules_of(cls: type) -> tuple[Rule, ...]:
    rules: tuple[Rule, ...] = getattr(cls, "RULES", ())
    return rules


def optional_inner(tp: Any) -> Any | None:
    """`X | None` -> X; anything else -> None."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


def is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, StrEnum)


def is_quantity(tp: Any) -> bool:
    return tp is Quantity


def sequence_item(tp: Any) -> Any | None:
    """`tuple[X, ...]` -> X."""
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def mapping_value(tp: Any) -> Any | None:
    """`Mapping[str, X]` -> X."""
    if typing.get_origin(tp) is Mapping:
        return typing.get_args(tp)[1]
    return None
