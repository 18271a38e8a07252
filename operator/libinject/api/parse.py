"""Parse and validate policy objects against the model, as the apiserver would.

Errors name the field the way the apiserver does (`spec.libraries[0].language`), and every error
in an object is reported, not only the first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from libinject.api.fields import QUANTITY_PATTERN, Field, matches
from libinject.api.introspect import (
    attrs_of,
    is_enum,
    is_quantity,
    mapping_value,
    optional_inner,
    rules_of,
    sequence_item,
)
from libinject.api.types import DNS_LABEL, GROUP, KIND, VERSION, InstrumentationPolicy, PolicySpec

T = TypeVar("T")
API_VERSION = f"{GROUP}/{VERSION}"
_GENERATION = Field(description="", minimum=0, maximum=2**63 - 1)  # the API server's int64


@dataclasses.dataclass(frozen=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidPolicyError(ValueError):
    """A policy object that the apiserver would reject; `errors` lists every problem."""

    def __init__(self, name: str, errors: list[FieldError]) -> None:
        self.name = name
        self.errors = errors
        listing = "; ".join(str(error) for error in errors)
        super().__init__(f"InstrumentationPolicy {name!r} is invalid: {listing}")


def parse_policy(obj: Mapping[str, Any]) -> InstrumentationPolicy:
    """A Kubernetes object (as loaded from YAML or the API) -> a validated policy."""
    errors: list[FieldError] = []
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if obj.get("apiVersion") != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION}"))
    if obj.get("kind") != KIND:
        errors.append(FieldError("kind", f"must be {KIND}"))
    if not isinstance(name, str) or not matches(DNS_LABEL, name):
        errors.append(FieldError("metadata.name", "Required value: a DNS label"))
        name = str(name)
    generation = metadata.get("generation") if isinstance(metadata, Mapping) else None
    if generation is not None:
        generation = _integer(
            generation, meta=_GENERATION, path="metadata.generation", errors=errors
        )
    raw_spec = obj.get("spec")
    spec = None
    if raw_spec is None:
        errors.append(FieldError("spec", "Required value"))
    else:
        spec = parse_object(PolicySpec, raw_spec, path="spec", errors=errors)
    if errors or spec is None:
        raise InvalidPolicyError(name, errors)
    return InstrumentationPolicy(
        name=name, spec=spec, generation=generation or 0, spec_hash=spec_hash(spec)
    )


def spec_hash(spec: PolicySpec) -> str:
    """A short digest of a policy's spec as parsed, defaults filled in: the same for a policy as
    written and as the API server stores it, so a pod's record says which spec it got."""
    canonical = json.dumps(dataclasses.asdict(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_object(cls: type[T], raw: Any, *, path: str, errors: list[FieldError]) -> T | None:
    """Build `cls` from JSON-like data, appending problems to `errors`. None if it cannot."""
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, f'Invalid value: "{_kind(raw)}": must be an object'))
        return None
    before = len(errors)
    known = {attr.key for attr in attrs_of(cls)}
    errors.extend(FieldError(f"{path}.{key}", "unknown field") for key in raw if key not in known)
    values = {}
    for attr in attrs_of(cls):
        child = f"{path}.{attr.key}"
        if attr.key not in raw:
            if attr.required:
                errors.append(FieldError(child, "Required value"))
            values[attr.name] = attr.default
            continue
        values[attr.name] = _value(
            attr.type, raw[attr.key], meta=attr.meta, path=child, errors=errors
        )
    if len(errors) > before:
        return None
    built = cls(**values)
    for rule in rules_of(cls):
        if not rule.check(built):
            errors.append(FieldError(path + (rule.field_path or ""), rule.message))
    return None if len(errors) > before else built


def _value(tp: Any, raw: Any, *, meta: Field, path: str, errors: list[FieldError]) -> Any:
    inner = optional_inner(tp)
    if inner is not None:
        return None if raw is None else _value(inner, raw, meta=meta, path=path, errors=errors)
    item = sequence_item(tp)
    if item is not None:
        return _sequence(item, raw, meta=meta, path=path, errors=errors)
    value_type = mapping_value(tp)
    if value_type is not None:
        return _mapping(value_type, raw, meta=meta, path=path, errors=errors)
    if dataclasses.is_dataclass(tp):
        return parse_object(tp, raw, path=path, errors=errors)  # type: ignore[arg-type]
    return _scalar(tp, raw, meta=meta, path=path, errors=errors)


def _scalar(tp: Any, raw: Any, *, meta: Field, path: str, errors: list[FieldError]) -> Any:
    if is_quantity(tp):
        return _quantity(raw, max_length=meta.max_length, path=path, errors=errors)
    if is_enum(tp):
        return _enum(tp, raw, path=path, errors=errors)
    if tp is bool:
        return _typed(raw, bool, "boolean", path=path, errors=errors)
    if tp is int:
        return _integer(raw, meta=meta, path=path, errors=errors)
    if tp is float:
        return _number(raw, meta=meta, path=path, errors=errors)
    if tp is str:
        return _string(
            raw, pattern=meta.pattern, max_length=meta.max_length, path=path, errors=errors
        )
    raise TypeError(f"no parser for {tp!r}")


def _quantity(
    raw: Any, *, max_length: int | None, path: str, errors: list[FieldError]
) -> str | None:
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if isinstance(raw, str) and max_length is not None and len(raw) > max_length:
        errors.append(FieldError(path, f"Too long: may not be more than {max_length} bytes"))
        return None
    if isinstance(text, str) and matches(QUANTITY_PATTERN, text):
        return text
    errors.append(FieldError(path, f'Invalid value: "{raw}": must be a quantity'))
    return None


def _enum(tp: Any, raw: Any, *, path: str, errors: list[FieldError]) -> Any:
    allowed = [member.value for member in tp]
    if raw in allowed:
        return tp(raw)
    listing = ", ".join(f'"{value}"' for value in allowed)
    errors.append(FieldError(path, f'Unsupported value: "{raw}": supported values: {listing}'))
    return None


def _typed(raw: Any, tp: type, name: str, *, path: str, errors: list[FieldError]) -> Any:
    if isinstance(raw, tp) and not (tp is int and isinstance(raw, bool)):
        return raw
    errors.append(FieldError(path, f'Invalid value: "{_kind(raw)}": must be of type {name}'))
    return None


def _integer(raw: Any, *, meta: Field, path: str, errors: list[FieldError]) -> int | None:
    number = _typed(raw, int, "integer", path=path, errors=errors)
    if number is None:
        return None
    if meta.minimum is not None and number < meta.minimum:
        errors.append(FieldError(path, f"Invalid value: {number}: must be >= {meta.minimum}"))
    if meta.maximum is not None and number > meta.maximum:
        errors.append(FieldError(path, f"Invalid value: {number}: must be <= {meta.maximum}"))
    return int(number)


def _number(raw: Any, *, meta: Field, path: str, errors: list[FieldError]) -> float | None:
    """A JSON number: an integer (of any size) or a finite float (YAML's .nan and .inf are not
    JSON), within the field's bounds."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        errors.append(FieldError(path, f'Invalid value: "{_kind(raw)}": must be of type number'))
        return None
    if isinstance(raw, float) and not math.isfinite(raw):
        errors.append(FieldError(path, f"Invalid value: {raw}: must be a finite number"))
        return None
    before = len(errors)
    if meta.minimum is not None and raw < meta.minimum:
        errors.append(FieldError(path, f"Invalid value: {raw}: must be >= {meta.minimum}"))
    if meta.maximum is not None and raw > meta.maximum:
        errors.append(FieldError(path, f"Invalid value: {raw}: must be <= {meta.maximum}"))
    return None if len(errors) > before else float(raw)


def _string(
    raw: Any, *, pattern: str | None, max_length: int | None, path: str, errors: list[FieldError]
) -> str | None:
    text = _typed(raw, str, "string", path=path, errors=errors)
    if text is None:
        return None
    if max_length is not None and len(text) > max_length:
        errors.append(FieldError(path, f"Too long: may not be more than {max_length} bytes"))
    if pattern is not None and not matches(pattern, text):
        errors.append(FieldError(path, f"Invalid value: \"{text}\": should match '{pattern}'"))
    return str(text)


def _sequence(item: Any, raw: Any, *, meta: Field, path: str, errors: list[FieldError]) -> Any:
    if not isinstance(raw, list):
        errors.append(FieldError(path, f'Invalid value: "{_kind(raw)}": must be an array'))
        return ()
    if meta.min_items is not None and len(raw) < meta.min_items:
        errors.append(
            FieldError(
                path, f"Invalid value: {len(raw)}: should have at least {meta.min_items} items"
            )
        )
    if meta.max_items is not None and len(raw) > meta.max_items:
        errors.append(
            FieldError(path, f"Too many: {len(raw)}: must have at most {meta.max_items} items")
        )
    item_meta = Field(description="", pattern=meta.item_pattern, max_length=253)
    parsed = tuple(
        _value(item, entry, meta=item_meta, path=f"{path}[{index}]", errors=errors)
        for index, entry in enumerate(raw)
    )
    _check_unique(raw, meta=meta, path=path, errors=errors)
    return parsed


def _check_unique(raw: list[Any], *, meta: Field, path: str, errors: list[FieldError]) -> None:
    """x-kubernetes-list-type set/map: no two entries (or two entries' keys) alike."""
    if meta.list_type is None:
        return
    seen: list[Any] = []
    for index, entry in enumerate(raw):
        key = entry
        if meta.list_type == "map" and isinstance(entry, Mapping):
            key = {name: entry.get(name) for name in meta.list_map_keys}
        if key in seen:
            errors.append(FieldError(f"{path}[{index}]", f"Duplicate value: {key}"))
        seen.append(key)


def _mapping(value_type: Any, raw: Any, *, meta: Field, path: str, errors: list[FieldError]) -> Any:
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, f'Invalid value: "{_kind(raw)}": must be an object'))
        return {}
    if meta.max_properties is not None and len(raw) > meta.max_properties:
        errors.append(
            FieldError(path, f"Too many: {len(raw)}: must have at most {meta.max_properties} items")
        )
    value_meta = Field(description="", pattern=meta.value_pattern, max_length=meta.value_max_length)
    return {
        str(key): _value(value_type, value, meta=value_meta, path=f"{path}[{key}]", errors=errors)
        for key, value in raw.items()
    }


def _kind(raw: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}.get(
        type(raw), type(raw).__name__
    )
