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


@dataclass(frozen=True)
class Narrowing:
    """What every namespace a selector selects has: one of `names`, or one of the label `pairs`.
    A superset test only: `selects_namespace` has the last word."""

    names: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()


def narrowing(selector: NamespaceSelector) -> Narrowing | None:
    """How a selector narrows the namespaces it can select, or None when it can select any.

    The one bucketing of selectors: the index files policies under these keys, and the status
    reconciler looks up namespaces by them.
    """
    if selector.match_names:
        return Narrowing(names=selector.match_names)
    if selector.match_labels:
        return Narrowing(pairs=(min(selector.match_labels.items()),))
    for requirement in selector.match_expressions:
        if requirement.operator is SelectorOperator.IN:
            return Narrowing(pairs=tuple((requirement.key, v) for v in requirement.values))
    return None


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
        keys = narrowing(policy.spec.namespace_selector)
        if keys is None:
            self._unkeyed.append(policy)
            return
        for name in keys.names:
            self._by_name.setdefault(name, []).append(policy)
        for pair in keys.pairs:
            self._by_label.setdefault(pair, []).append(policy)

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
