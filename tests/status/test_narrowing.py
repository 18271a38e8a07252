"""The status reconciler and the webhook's index narrow namespaces with one bucketing of
selectors (`libinject.engine.index.narrowing`): the namespaces a status counts are exactly those
whose index plan holds the policy, for any selector."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from builders import PYTHON, policy, policy_object
from libinject.engine.index import Namespace, PolicyIndex, narrowing
from libinject.engine.selectors import selects_namespace
from libinject.engine.settings import NamespaceSettings
from libinject.status import PolicyObject, reconcile

ON = {"libinject.dev/inject": "enabled"}
NAMES = ["a", "b", "c", "d"]
KEYS = ["team", "tier"]
VALUES = ["x", "y", "z"]

LABELS = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)
NAMESPACES = st.dictionaries(st.sampled_from(NAMES), LABELS.map(lambda labels: {**ON, **labels}))
EXPRESSION = st.one_of(
    st.builds(
        lambda key, op, values: {"key": key, "operator": op, "values": values},
        st.sampled_from(KEYS),
        st.sampled_from(["In", "NotIn"]),
        st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True),
    ),
    st.builds(
        lambda key, op: {"key": key, "operator": op},
        st.sampled_from(KEYS),
        st.sampled_from(["Exists", "DoesNotExist"]),
    ),
)
SELECTOR = st.one_of(
    st.just({}),
    st.builds(
        lambda names: {"matchNames": names},
        st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda labels, expressions: {
            **({"matchLabels": labels} if labels else {}),
            **({"matchExpressions": expressions} if expressions else {}),
        },
        LABELS,
        st.lists(EXPRESSION, max_size=2, unique_by=lambda e: (e["key"], e["operator"])),
    ),
)


@settings(max_examples=200, deadline=None)
@given(selector=SELECTOR, namespaces=NAMESPACES)
def test_the_status_counts_the_namespaces_the_index_plans_for(
    selector: dict[str, Any], namespaces: dict[str, dict[str, str]]
) -> None:
    """matchedNamespaces (status) equals the number of namespaces whose plan (webhook) holds the
    policy: both narrow by the same keys, so neither can miss a namespace the other counts."""
    body = policy_object("p", libraries=[PYTHON], namespaceSelector=selector)
    verdict = reconcile(
        [PolicyObject("p", 1, body, {})],
        namespaces=namespaces,
        settings=NamespaceSettings(),
        now=datetime(2025, 1, 1),
    )["p"]
    index = PolicyIndex([policy("p", libraries=[PYTHON], namespaceSelector=selector)])
    planned = [
        name
        for name, labels in namespaces.items()
        if index.plan(Namespace(name, labels)).by_language
    ]
    assert verdict.status["matchedNamespaces"] == len(planned)


@settings(max_examples=300, deadline=None)
@given(selector=SELECTOR, name=st.sampled_from(NAMES), labels=LABELS)
def test_narrowing_never_drops_a_selected_namespace(
    selector: dict[str, Any], name: str, labels: dict[str, str]
) -> None:
    """Every namespace a selector selects has one of its narrowing's names or label pairs."""
    parsed = policy("p", namespaceSelector=selector).spec.namespace_selector
    if not selects_namespace(parsed, name, labels):
        return
    keys = narrowing(parsed)
    assert keys is None or name in keys.names or any(p in labels.items() for p in keys.pairs)
