"""Render the model as an OpenAPI v3 structural schema, the way the CRD needs it."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any

from libinject.api.fields import QUANTITY_PATTERN, Field, Rule
from libinject.api.introspect import (
    Attr,
    attrs_of,
    is_enum,
    is_quantity,
    mapping_value,
    optional_inner,
    rules_of,
    sequence_item,
)

Schema = dict[str, Any]


def object_schema(cls: type) -> Schema:
    """The schema of a model dataclass: properties, required keys, defaults and CEL rules."""
    schema: Schema = {"type": "object", "description": _docstring(cls)}
    schema["properties"] = {attr.key: _attr_schema(attr) for attr in attrs_of(cls)}
    required = [attr.key for attr in attrs_of(cls) if attr.required]
    if required:
        schema["required"] = required
    rules = rules_of(cls)
    if rules:
        schema["x-kubernetes-validations"] = [_cel(rule) for rule in rules]
    return schema


def _cel(rule: Rule) -> Schema:
    out: Schema = {"rule": rule.cel, "message": rule.message}
    if rule.field_path:
        out["fieldPath"] = rule.field_path
    return out


def _docstring(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def _attr_schema(attr: Attr) -> Schema:
    schema = _type_schema(attr.type, attr.meta)
    schema["description"] = attr.meta.description
    default = _default(attr.default)
    if default is not None:
        schema["default"] = default
    return schema


def _default(value: Any) -> Any:
    """Scalars and nested objects get CRD defaults; empty and absent values do not."""
    if value is None or value in ((), {}):
        return None
    if dataclasses.is_dataclass(value):
        return {}
    if isinstance(value, StrEnum):
        return value.value
    return value


def _type_schema(tp: Any, meta: Field) -> Schema:
    inner = optional_inner(tp)
    if inner is not None:
        return _type_schema(inner, meta)
    item = sequence_item(tp)
    if item is not None:
        return _array_schema(item, meta)
    value = mapping_value(tp)
    if value is not None:
        return _map_schema(value, meta)
    if dataclasses.is_dataclass(tp):
        nested = object_schema(tp)  # type: ignore[arg-type]
        del nested["description"]
        return nested
    return _scalar_schema(tp, meta)


def _scalar_schema(tp: Any, meta: Field) -> Schema:
    schema: Schema
    if is_quantity(tp):
        schema = {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
        _put(schema, maxLength=meta.max_length)  # bounds the cost of CEL rules that read it
        return schema
    if is_enum(tp):
        return {"type": "string", "enum": [member.value for member in tp]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is float:
        schema = {"type": "number"}
        _put(schema, minimum=meta.minimum, maximum=meta.maximum)
        return schema
    if tp is int:
        schema = {"type": "integer", "format": "int64"}
        _put(schema, minimum=meta.minimum, maximum=meta.maximum)
        return schema
    if tp is str:
        schema = {"type": "string"}
        _put(schema, pattern=meta.pattern, maxLength=meta.max_length)
        if meta.date_time:
            schema["format"] = "date-time"
        return schema
    raise TypeError(f"no schema for {tp!r}")


def _array_schema(item: Any, meta: Field) -> Schema:
    items = _type_schema(item, Field(description="", pattern=meta.item_pattern, max_length=253))
    schema: Schema = {"type": "array", "items": items}
    _put(schema, minItems=meta.min_items, maxItems=meta.max_items)
    if meta.list_type:
        schema["x-kubernetes-list-type"] = meta.list_type
    if meta.list_map_keys:
        schema["x-kubernetes-list-map-keys"] = list(meta.list_map_keys)
    return schema


def _map_schema(value: Any, meta: Field) -> Schema:
    values = _type_schema(
        value, Field(description="", pattern=meta.value_pattern, max_length=meta.value_max_length)
    )
    schema: Schema = {"type": "object", "additionalProperties": values}
    _put(schema, maxProperties=meta.max_properties)
    return schema


def _put(schema: Schema, **keywords: Any) -> None:
    schema.update({key: value for key, value in keywords.items() if value is not None})
