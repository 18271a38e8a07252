"""Which policy wins per language, and what explain says about the others."""

from __future__ import annotations

import itertools

import pytest

from builders import ENABLED, PYTHON, pod, policy, run
from libinject.api.types import InstrumentationPolicy
from libinject.engine.decision import Code
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import inject
from libinject.engine.settings import EngineSettings

JAVA = {"language": "java", "version": "1.56.0"}


def winner(result_policy: str, *policies: InstrumentationPolicy, **kwargs: object) -> None:
    result = run(pod(labels={"app": "web"}), *policies, **kwargs)  # type: ignore[arg-type]
    assert [c.policy for c in result.decision.injected] == [result_policy]


def test_highest_priority_wins() -> None:
    winner("high", policy("low", priority=1), policy("high", priority=5), policy("mid"))


def test_ties_go_to_the_first_name_whatever_the_order() -> None:
    """Deterministic: every permutation of the same policies gives the same winner."""
    candidates = [policy("bravo"), policy("alpha"), policy("charlie")]
    for order in itertools.permutations(candidates):
        winner("alpha", *order)


def test_paused_policies_never_win() -> None:
    winner("steady", policy("urgent", priority=100, paused=True), policy("steady"))


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ({"matchNames": ["apps"]}, True),
        ({"matchNames": ["other"]}, False),
        ({"matchLabels": {"team": "shop"}}, True),
        ({"matchLabels": {"team": "ads"}}, False),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["shop"]}]}, True),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["shop"]}]}, False),
        (
            {"matchExpressions": [{"key": "team", "operator": "In", "values": ["ads", "shop"]}]},
            True,
        ),
        (
            {"matchExpressions": [{"key": "team", "operator": "In", "values": ["ads", "web"]}]},
            False,
        ),
        (
            {
                "matchExpressions": [
                    {"key": "team", "operator": "In", "values": ["shop"]},
                    {"key": "tier", "operator": "Exists"},
                ]
            },
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, True),
        ({}, True),
    ],
)
def test_namespace_selector(selector: dict[str, object], selected: bool) -> None:
    namespace = Namespace("apps", {"libinject.dev/inject": "enabled", "team": "shop"})
    result = run(pod(), policy("p", namespaceSelector=selector), namespace=namespace)
    assert bool(result.decision.injected) is selected


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "api"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api", "web"]}]}, True),
        ({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, False),
    ],
)
def test_pod_selector(selector: dict[str, object], selected: bool) -> None:
    result = run(pod(labels={"app": "web"}), policy("p", podSelector=selector))
    assert bool(result.decision.injected) is selected


def test_a_lower_policy_wins_when_the_higher_one_does_not_select_the_pod() -> None:
    picky = policy("picky", priority=9, podSelector={"matchLabels": {"app": "api"}})
    winner("fallback", picky, policy("fallback"))


def test_each_language_has_its_own_winner() -> None:
    both = policy("both", libraries=[PYTHON, JAVA])
    java_first = policy(
        "java-first",
        priority=3,
        libraries=[{**JAVA, "flavor": "opentelemetry", "version": "2.22.0"}],
    )
    result = run(pod(), both, java_first)
    chosen = {c.language.value: (c.policy, c.version) for c in result.decision.injected}
    assert chosen == {"java": ("java-first", "2.22.0"), "python": ("both", "4.16.0")}


def test_explain_gives_a_verdict_on_every_policy() -> None:
    policies = [
        policy("winner", priority=5),
        policy("loser"),
        policy("sleepy", paused=True),
        policy("elsewhere", namespaceSelector={"matchNames": ["other"]}),
        policy("picky", podSelector={"matchLabels": {"app": "api"}}),
    ]
    result = run(pod(labels={"app": "web"}), *policies, explain=True)
    (python,) = result.decision.languages
    verdicts = {v.policy: v.reason.code for v in python.candidates}
    assert verdicts == {
        "winner": Code.SELECTED,
        "loser": Code.LOWER_PRIORITY,
        "sleepy": Code.POLICY_PAUSED,
        "elsewhere": Code.NAMESPACE_NOT_SELECTED,
        "picky": Code.POD_NOT_SELECTED,
    }
    assert python.choice is not None
    assert python.choice.policy == "winner"


def test_no_matching_policy_is_a_recorded_skip() -> None:
    result = run(pod(), policy("elsewhere", namespaceSelector={"matchNames": ["other"]}))
    assert result.decision.reason.code is Code.NO_MATCHING_POLICY
    annotation = result.pod["metadata"]["annotations"]["libinject.dev/injection-skipped"]
    assert annotation.startswith("NoMatchingPolicy")


def test_plan_cache_follows_namespace_labels() -> None:
    """The per-namespace plan is keyed by labels too: relabelling changes the outcome."""
    index = PolicyIndex([policy("shop", namespaceSelector={"matchLabels": {"team": "shop"}})])
    before = Namespace("apps", dict(ENABLED.labels))
    after = Namespace("apps", {**ENABLED.labels, "team": "shop"})
    settings = EngineSettings()
    assert not inject(pod(), namespace=before, index=index, settings=settings).decision.injected
    assert inject(pod(), namespace=after, index=index, settings=settings).decision.injected
