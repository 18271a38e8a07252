"""The webhook's view of Kopf's in-memory indexes, in the engine's terms.

Kopf fills two indexes from its watches: every valid policy under one key, and every namespace's
labels under its name. The engine wants a `PolicyIndex` (sorted, bucketed, with cached per-namespace
plans), which is worth building once per change of the policies, not per pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import kopf

from libinject.admission import Caches
from libinject.api.parse import InvalidPolicyError
from libinject.api.types import InstrumentationPolicy
from libinject.engine.checks import usable_policy
from libinject.engine.index import PolicyIndex
from libinject.engine.selectors import interned
from libinject.runtime import logs

ALL = "all"  # the policies index keeps every policy under this one key
log = logs.get(__name__)


def policy_entry(body: Mapping[str, Any]) -> dict[str, InstrumentationPolicy]:
    """The policies index's function: a usable policy under `ALL`; an invalid one is left out
    (the reconciler reports it on the object) and so injects nothing."""
    try:
        return {ALL: usable_policy(body)}
    except InvalidPolicyError as error:
        log.warning("policy not indexed", policy=error.name, reason=str(error))
        return {}


def namespace_entry(body: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The namespaces index's function: the namespace's labels under its name."""
    metadata = body.get("metadata") or {}
    return {str(metadata.get("name")): labels_of(body)}


def labels_of(body: Mapping[str, Any]) -> dict[str, str]:
    """An object's labels, interned (engine.selectors.interned): each of our two Kopf operators
    parses its own watch events of every namespace."""
    return interned((body.get("metadata") or {}).get("labels") or {})


class NamespaceLabels(Mapping[str, Mapping[str, str]]):
    """Labels by namespace name, read through from Kopf's index (one value per name)."""

    def __init__(self, index: kopf.Index[str, dict[str, str]]) -> None:
        self._index = index

    def __getitem__(self, name: str) -> Mapping[str, str]:
        for labels in self._index[name]:
            return labels
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class CacheState:
    """Whether the indexes are primed, and the engine's index built from the current policies."""

    def __init__(self) -> None:
        self.primed = False
        self._key: tuple[int, ...] | None = None
        self._index = PolicyIndex(())

    def caches(
        self,
        policies: kopf.Index[str, InstrumentationPolicy],
        namespaces: kopf.Index[str, dict[str, str]],
    ) -> Caches | None:
        """None until primed: deciding on a half-filled cache would inject the wrong thing."""
        if not self.primed:
            return None
        current = list(policies[ALL]) if ALL in policies else []
        # Kopf stores a freshly parsed object on every change, and our cached index holds the
        # previous objects alive, so their ids cannot be reused: equal ids mean equal policies.
        key = tuple(map(id, current))
        if key != self._key:
            self._index = PolicyIndex(current)
            self._key = key
        return Caches(index=self._index, namespaces=NamespaceLabels(namespaces))
