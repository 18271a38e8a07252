"""The webhook's view of Kopf's indexes, read through Kopf's own in-memory index classes: nothing
is decided before the indexes are primed, the engine's index holds exactly the stored policies and
is rebuilt when (and only when) they change, and namespace labels read through to Kopf's index."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest
from kopf._core.engines.indexing import OperatorIndexer

from builders import PYTHON, pod, policy, policy_object
from libinject.admission import admit
from libinject.engine.decision import Code
from libinject.engine.settings import EngineSettings
from libinject.runtime.caches import (
    ALL,
    CacheState,
    NamespaceLabels,
    labels_of,
    namespace_entry,
    policy_entry,
)

ENABLED = {"libinject.dev/inject": "enabled"}


def key(name: str) -> tuple[None, str, str]:
    """Kopf's key of a cluster-scoped object: (namespace, name, uid)."""
    return (None, name, f"uid-{name}")


def indexes(*names: str) -> tuple[OperatorIndexer, OperatorIndexer]:
    """A policies index holding a policy per name, and a namespaces index of shop and plain."""
    policies, namespaces = OperatorIndexer(), OperatorIndexer()
    for name in names:
        policies.replace(key(name), policy_entry(policy_object(name)))
    namespaces.replace(
        key("shop"), namespace_entry({"metadata": {"name": "shop", "labels": ENABLED}})
    )
    namespaces.replace(key("plain"), namespace_entry({"metadata": {"name": "plain"}}))
    return policies, namespaces


def body(raw: dict[str, Any]) -> kopf.Body:
    """An object as Kopf hands it to index handlers (its type is a TypedDict of the API's keys)."""
    return kopf.Body(cast("kopf.RawBody", raw))


def primed() -> CacheState:
    state = CacheState()
    state.primed = True
    return state


def test_a_valid_policy_is_indexed_under_the_one_key() -> None:
    assert policy_entry(body(policy_object("a", priority=3))) == {ALL: policy("a", priority=3)}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(policy_object("a", libraries=[]), id="no-libraries"),
        pytest.param({**policy_object("a"), "apiVersion": "libinject.dev/v9"}, id="wrong-version"),
        pytest.param({**policy_object("a"), "spec": "python"}, id="spec-not-a-mapping"),
        # Valid for the schema, refused by the checks the status reports: Invalid injects nothing.
        pytest.param(
            policy_object("a", libraries=[{**PYTHON, "allowedVersions": ["2.*"]}]),
            id="version-outside-allowed-versions",
        ),
        pytest.param(
            policy_object("a", libraries=[{**PYTHON, "image": "registry.example/Python:1"}]),
            id="image-not-a-reference",
        ),
    ],
)
def test_an_invalid_policy_is_left_out_of_the_index(raw: dict[str, Any]) -> None:
    assert policy_entry(body(raw)) == {}


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param({"name": "shop", "labels": ENABLED}, {"shop": ENABLED}, id="labelled"),
        pytest.param({"name": "plain"}, {"plain": {}}, id="no-labels"),
        pytest.param({"name": "plain", "labels": None}, {"plain": {}}, id="null-labels"),
    ],
)
def test_a_namespace_is_indexed_by_name_with_its_labels(
    metadata: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert namespace_entry(body({"metadata": metadata})) == expected


def test_nothing_is_decided_until_the_indexes_are_primed() -> None:
    policies, namespaces = indexes("a")
    state = CacheState()
    assert state.caches(policies.index, namespaces.index) is None
    state.primed = True
    assert state.caches(policies.index, namespaces.index) is not None


def test_primed_caches_hold_exactly_the_stored_policies() -> None:
    policies, namespaces = indexes("b", "a")
    caches = primed().caches(policies.index, namespaces.index)
    assert caches is not None
    stored = list(policies.index[ALL])
    assert sorted(map(id, caches.index.policies)) == sorted(map(id, stored))
    assert [p.name for p in caches.index.policies] == ["a", "b"]  # in the order policies win


def test_primed_caches_without_policies_hold_none() -> None:
    policies, namespaces = indexes()
    caches = primed().caches(policies.index, namespaces.index)
    assert caches is not None
    assert caches.index.policies == ()


def test_primed_caches_let_the_admission_core_decide() -> None:
    policies, namespaces = indexes("a")
    caches = primed().caches(policies.index, namespaces.index)
    admission = admit(pod(), namespace="shop", caches=caches, settings=EngineSettings())
    assert admission.outcome is Code.INJECTED


def _replace_a(policies: OperatorIndexer) -> None:
    policies.replace(key("a"), policy_entry(policy_object("a", priority=7)))


def _add_c(policies: OperatorIndexer) -> None:
    policies.replace(key("c"), policy_entry(policy_object("c")))


def _remove_b(policies: OperatorIndexer) -> None:
    policies.discard(key("b"))


def _remove_all(policies: OperatorIndexer) -> None:
    policies.discard(key("a"))
    policies.discard(key("b"))


def _invalidate_b(policies: OperatorIndexer) -> None:
    policies.replace(key("b"), policy_entry(policy_object("b", libraries=[])))


@pytest.mark.parametrize(
    ("change", "names"),
    [
        pytest.param(_replace_a, ["a", "b"], id="replaced"),
        pytest.param(_add_c, ["a", "b", "c"], id="added"),
        pytest.param(_remove_b, ["a"], id="removed"),
        pytest.param(_remove_all, [], id="all-removed"),
        pytest.param(_invalidate_b, ["a"], id="became-invalid"),
    ],
)
def test_the_engine_index_is_rebuilt_when_the_policies_change(
    change: Callable[[OperatorIndexer], None], names: list[str]
) -> None:
    policies, namespaces = indexes("a", "b")
    state = primed()
    before = state.caches(policies.index, namespaces.index)
    change(policies)
    after = state.caches(policies.index, namespaces.index)
    assert before is not None
    assert after is not None
    assert after.index is not before.index
    assert sorted(p.name for p in after.index.policies) == names
    assert set(map(id, after.index.policies)) == set(map(id, policies.index.get(ALL, [])))


def _nothing(policies: OperatorIndexer, namespaces: OperatorIndexer) -> None:
    pass


def _reindex_unchanged(policies: OperatorIndexer, namespaces: OperatorIndexer) -> None:
    """A re-listing parses an equal policy again: Kopf keeps the object it already holds."""
    policies.replace(key("a"), policy_entry(policy_object("a")))


def _relabel_plain(policies: OperatorIndexer, namespaces: OperatorIndexer) -> None:
    relabelled = {"metadata": {"name": "plain", "labels": ENABLED}}
    namespaces.replace(key("plain"), namespace_entry(relabelled))


@pytest.mark.parametrize(
    ("change", "plain"),
    [
        pytest.param(_nothing, {}, id="nothing"),
        pytest.param(_reindex_unchanged, {}, id="equal-policy-reindexed"),
        pytest.param(_relabel_plain, ENABLED, id="namespace-relabelled"),
    ],
)
def test_the_engine_index_is_reused_while_the_policies_stay_the_same(
    change: Callable[[OperatorIndexer, OperatorIndexer], None], plain: dict[str, str]
) -> None:
    policies, namespaces = indexes("a", "b")
    state = primed()
    before = state.caches(policies.index, namespaces.index)
    change(policies, namespaces)
    after = state.caches(policies.index, namespaces.index)
    assert before is not None
    assert after is not None
    assert after.index is before.index
    assert after.namespaces["plain"] == plain


def test_namespace_labels_is_a_mapping_read_through_to_the_index() -> None:
    _, namespaces = indexes()
    labels = NamespaceLabels(namespaces.index)
    assert labels["shop"] == ENABLED
    assert labels["plain"] == {}
    assert "shop" in labels
    assert "absent" not in labels
    assert len(labels) == 2
    assert sorted(labels) == ["plain", "shop"]
    assert dict(labels) == {"shop": ENABLED, "plain": {}}
    assert labels.get("absent") is None
    with pytest.raises(KeyError, match="absent"):
        labels["absent"]
    namespaces.discard(key("plain"))
    assert "plain" not in labels
    assert len(labels) == 1
    with pytest.raises(KeyError, match="plain"):
        labels["plain"]


def test_labels_of_two_separately_parsed_namespaces_share_their_strings() -> None:
    """Each watch event is its own JSON document, so equal label keys and values arrive as
    distinct strings; the labels kept are interned, so 10,000 namespaces keep one `team`."""
    first, second = (
        json.loads(json.dumps({"metadata": {"name": name, "labels": {"team": "shop"}}}))
        for name in ("a", "b")
    )
    assert first["metadata"]["labels"]["team"] is not second["metadata"]["labels"]["team"]
    kept_first, kept_second = labels_of(first), labels_of(second)
    assert kept_first == kept_second == {"team": "shop"}
    assert next(iter(kept_first)) is next(iter(kept_second))
    assert kept_first["team"] is kept_second["team"]
    assert labels_of({"metadata": {"name": "bare"}}) == {}
