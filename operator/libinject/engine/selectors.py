"""Label selectors, with the apiserver's semantics."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from libinject.api.types import LabelSelector, NamespaceSelector, SelectorOperator


def interned(labels: Mapping[Any, Any]) -> dict[str, str]:
    """Labels as text, each key and value interned: each watch event is parsed on its own, so
    without this 10,000 namespaces (or pods of a few workloads) keep 10,000 copies of `team`,
    `env`, `app` and their values."""
    return {sys.intern(str(key)): sys.intern(str(value)) for key, value in labels.items()}


def selects(selector: LabelSelector | NamespaceSelector, labels: Mapping[str, str]) -> bool:
    """matchLabels and every matchExpression must hold (an empty selector selects all)."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator is SelectorOperator.IN:
            ok = present and labels[req.key] in req.values
        elif req.operator is SelectorOperator.NOT_IN:
            ok = not present or labels[req.key] not in req.values
        elif req.operator is SelectorOperator.EXISTS:
            ok = present
        else:
            ok = not present
        if not ok:
            return False
    return True


def selects_namespace(selector: NamespaceSelector, name: str, labels: Mapping[str, str]) -> bool:
    if selector.match_names:
        return name in selector.match_names
    return selects(selector, labels)


def describe_selector(selector: LabelSelector | NamespaceSelector) -> str:
    """A short, kubectl-like rendering for explanations."""
    parts = [f"{key}={value}" for key, value in selector.match_labels.items()]
    for req in selector.match_expressions:
        values = ",".join(req.values)
        parts.append(
            f"{req.key} {req.operator} ({values})" if values else f"{req.key} {req.operator}"
        )
    if isinstance(selector, NamespaceSelector) and selector.match_names:
        parts.append("name in (" + ",".join(selector.match_names) + ")")
    return ", ".join(parts) or "everything"
