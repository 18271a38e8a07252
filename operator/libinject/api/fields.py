"""Field metadata for the API model.

The model in `libinject.api.types` is plain frozen dataclasses. Each field carries a `Field`
(description and constraints) and each class may carry `Rule`s (cross-field checks). Two readers
consume this one declaration: `openapi` renders it as the CRD's structural schema (constraints as
OpenAPI keywords, rules as CEL), and `parse` enforces it in Python. Keeping both views derived from
one place is what makes the CRD file and the engine agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NewType

# A Kubernetes resource quantity ("100m", "1Gi", 2). Kept as the user's string.
Quantity = NewType("Quantity", str)

# The apiserver's own quantity grammar (as emitted by controller-gen for resource.Quantity).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

FIELD_KEY = "libinject"


@dataclass(frozen=True)
class Field:
    """What the schema says about one field besides its type."""

    description: str
    pattern: str | None = None
    item_pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    max_properties: int | None = None
    list_type: Literal["set", "map"] | None = None
    list_map_keys: tuple[str, ...] = ()
    value_pattern: str | None = None
    value_max_length: int | None = None
    date_time: bool = False


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: CEL for the apiserver, `check` for Python, one message for both.

    `check` receives the parsed dataclass instance and returns True when the object is valid.
    `field_path` (like ".values") points the error at a child field, as the apiserver does.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None


def matches(pattern: str, text: str) -> bool:
    """Whether `text` matches a schema pattern as the API server judges it.

    The API server runs patterns with Go's regexp, where `$` matches only at the very end;
    Python's `re.search` lets `$` match before a trailing newline too, so "1.2\n" would pass
    here and be refused there. Every pattern of the model is anchored (`^...$`, a test checks),
    so a full match is the same judgement without that gap.
    """
    return re.fullmatch(pattern, text) is not None


def describe(description: str, **constraints: Any) -> dict[str, Field]:
    """Metadata for `dataclasses.field(metadata=...)`."""
    return {FIELD_KEY: Field(description=description, **constraints)}


def json_name(python_name: str) -> str:
    """snake_case attribute -> camelCase JSON key, the Kubernetes convention."""
    head, *rest = python_name.split("_")
    return head + "".join(part.capitalize() for part in rest)
