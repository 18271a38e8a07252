"""Which policies can apply in a namespace, computed once per namespace rather than per pod.

Policies are bucketed by how they select namespaces (by name, by a label pair the namespace must
have, or neither), so a namespace's plan looks at the few policies that could select it. Plans
are cached by the namespace's name and labels; a new set of policies means a new index.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from libinject.api.types import (
    InstrumentationPolicy,
    Language,
    NamespaceSelector,
    SelectorOperator,
)
from libinject.engine.selectors import selects_namespace

PLAN_CACHE_SIZE = 65536


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


def rank(policy: InstrumentationPolicy) -> tuple[int, str]:
    """Highest priority first, then by name: the order in which policies win."""
    return (-policy.spec.priority, policy.name)


@dataclass(frozen=True)
class NamespacePlan:
    """For one namespace: per language, the un-paused policies that select it, best first."""

    by_language: Mapping[Language, tuple[InstrumentationPolicy, ...]]


def _required_pairs(selector: NamespaceSelector) -> list[tuple[str, str]]:
    """For a selector with an `In` expression: every label pair one of which a selected namespace
    must have. Empty when no expression narrows the namespaces that way."""
    for requirement in selector.match_expressions:
        if requirement.operator is SelectorOperator.IN:
            return [(requirement.key, value) for value in requirement.values]
    return []


class PolicyIndex:
    def __init__(self, policies: Iterable[InstrumentationPolicy]) -> None:
        self.policies: tuple[InstrumentationPolicy, ...] = tuple(sorted(policies, key=rank))
        self._by_name: dict[str, list[InstrumentationPolicy]] = {}
        self._by_label: dict[tuple[str, str], list[InstrumentationPolicy]] = {}
        self._unkeyed: list[InstrumentationPolicy] = []
        self._plans: OrderedDict[tuple[str, frozenset[tuple[str, str]]], NamespacePlan] = (
            OrderedDict()
        )
        for policy in self.policies:
            if not policy.spec.paused:
                self._bucket(policy)

    def _bucket(self, policy: InstrumentationPolicy) -> None:
        selector = policy.spec.namespace_selector
        if selector.match_names:
            for name in selector.match_names:
                self._by_name.setdefault(name, []).append(policy)
        elif selector.match_labels:
            pair = min(selector.match_labels.items())
            self._by_label.setdefault(pair, []).append(policy)
        elif keyed := _required_pairs(selector):
            for pair in keyed:
                self._by_label.setdefault(pair, []).append(policy)
        else:
            self._unkeyed.append(policy)

    def plan(self, namespace: Namespace) -> NamespacePlan:
        key = (namespace.name, frozenset(namespace.labels.items()))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._build_plan(namespace)
            self._plans[key] = plan
            if len(self._plans) > PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return plan

    def _build_plan(self, namespace: Namespace) -> NamespacePlan:
        candidates = list(self._by_name.get(namespace.name, ()))
        for pair in namespace.labels.items():
            candidates.extend(self._by_label.get(pair, ()))
        candidates.extend(self._unkeyed)
        selected = sorted(
            {
                p.name: p
                for p in candidates
                if selects_namespace(p.spec.namespace_selector, namespace.name, namespace.labels)
            }.values(),
            key=rank,
        )
        by_language: dict[Language, list[InstrumentationPolicy]] = {}
        for policy in selected:
            for library in policy.spec.libraries:
                by_language.setdefault(library.language, []).append(policy)
        return NamespacePlan({lang: tuple(ps) for lang, ps in sorted(by_language.items())})
