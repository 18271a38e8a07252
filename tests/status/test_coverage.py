"""The coverage counts' pure core (libinject.coverage): which policy a pod counts for (the
engine's own selection), in which state (instrumented at the current spec, outdated, skipped by
reason), what of a pod is kept, and the counts kept as pods come, change and go."""

from __future__ import annotations

import json
from typing import Any

import pytest

from builders import JAVA, PYTHON, pod, policy, run
from libinject.coverage import (
    INSTRUMENTED,
    OUTDATED,
    REASONS_LIMIT,
    PodSummary,
    Tally,
    states,
    summarize,
    winners,
)
from libinject.engine.index import PolicyIndex
from libinject.engine.settings import NamespaceSettings

ENABLED = {"apps": {"libinject.dev/inject": "enabled"}, "off": {}}
SETTINGS = NamespaceSettings()


def _pod(
    annotations: dict[str, str] | None = None,
    *,
    namespace: str = "apps",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = pod(labels=labels or {"app": "web"}, annotations=annotations or {})
    body["metadata"]["namespace"] = namespace
    return body


def _judged(body: dict[str, Any], *policies: Any) -> tuple[tuple[str, str], ...]:
    summary = summarize(body)
    assert summary is not None
    index = PolicyIndex(policies)
    return states(summary, winners(summary, index=index, namespaces=ENABLED, settings=SETTINGS))


def _injected_by(*policies: Any) -> dict[str, Any]:
    """A pod as the webhook admitted it under `policies`."""
    admitted = run(_pod(), *policies).pod
    admitted["metadata"]["namespace"] = "apps"
    return admitted


def test_a_pod_injected_at_the_current_spec_is_instrumented() -> None:
    rule = policy("py")
    assert _judged(_injected_by(rule), rule) == (("py", INSTRUMENTED),)


def test_a_pod_injected_at_an_older_spec_is_outdated() -> None:
    """The policy changed since (here its version's allowed list): the record's spec hash is
    no longer the policy's."""
    admitted = _injected_by(policy("py"))
    changed = policy("py", libraries=[{**PYTHON, "allowedVersions": ["4.*"]}])
    assert _judged(admitted, changed) == (("py", OUTDATED),)


@pytest.mark.parametrize(
    "annotations",
    [{}, {"libinject.dev/injection-skipped": "NoMatchingPolicy: no policy selects this pod"}],
    ids=["created-without-the-webhook", "created-before-the-policy"],
)
def test_a_pod_admitted_before_the_policy_won_it_is_outdated(annotations: dict[str, str]) -> None:
    assert _judged(_pod(annotations), policy("py")) == (("py", OUTDATED),)


def test_a_pod_another_policy_injected_is_outdated_for_the_one_that_wins_now() -> None:
    """A new policy of higher priority wins the pod now: a restart moves it over."""
    admitted = _injected_by(policy("old"))
    assert _judged(admitted, policy("old"), policy("new", priority=5)) == (("new", OUTDATED),)


def test_a_skipped_pod_counts_under_its_reason() -> None:
    body = _pod({"libinject.dev/inject": "false"})
    skipped = run(body, policy("py")).pod
    skipped["metadata"]["namespace"] = "apps"
    [(name, state)] = _judged(skipped, policy("py"))
    assert (name, state) == ("py", "PodOptedOut")


def test_a_skip_reason_that_is_none_of_the_engines_counts_as_outdated() -> None:
    """The pod's author may write the annotation before any webhook overwrites it."""
    body = _pod({"libinject.dev/injection-skipped": "Whatever: made up"})
    assert _judged(body, policy("py")) == (("py", OUTDATED),)


def test_a_pod_counts_once_for_a_policy_that_wins_two_of_its_languages() -> None:
    both = policy("both", libraries=[PYTHON, JAVA])
    assert _judged(_injected_by(both), both) == (("both", INSTRUMENTED),)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (_pod(namespace="off"), "a namespace where injection is off"),
        (_pod(labels={"app": "other"}), "a podSelector that does not select it"),
    ],
)
def test_a_pod_no_policy_wins_counts_for_none(body: dict[str, Any], why: str) -> None:
    selective = policy("py", podSelector={"matchLabels": {"app": "web"}})
    assert _judged(body, selective) == (), why


@pytest.mark.parametrize(
    "change",
    [{"status": {"phase": "Succeeded"}}, {"status": {"phase": "Failed"}},
     {"metadata": {"deletionTimestamp": "2026-12-07T00:00:00Z"}}],
    ids=["succeeded", "failed", "being-deleted"],
)  # fmt: skip
def test_finished_and_deleted_pods_are_not_kept(change: dict[str, Any]) -> None:
    body = _pod()
    for key, value in change.items():
        body.setdefault(key, {}).update(value)
    assert summarize(body) is None


@pytest.mark.parametrize(
    "record", ["not json", "{}", '[1, "x", null]', json.dumps([{"policy": 3}])]
)
def test_a_record_that_cannot_be_read_names_no_policy(record: str) -> None:
    summary = summarize(_pod({"libinject.dev/injected": record}))
    assert summary is not None
    assert all(policy != "py" for policy, _ in summary.injected)


def test_the_tally_follows_pods_as_they_change_and_go() -> None:
    tally = Tally()
    tally.judge("a", [("py", INSTRUMENTED)])
    tally.judge("b", [("py", OUTDATED), ("java", INSTRUMENTED)])
    tally.judge("c", [("py", "PodOptedOut")])
    assert tally.status("py") == {
        "pods": {"total": 3, "instrumented": 1, "outdated": 1, "skipped": {"PodOptedOut": 1}},
        "instrumented": "1/3",
    }
    tally.judge("b", [("py", INSTRUMENTED)])  # restarted at the current spec
    tally.judge("c", ())  # gone
    assert tally.status("py") == {
        "pods": {"total": 2, "instrumented": 2, "outdated": 0},
        "instrumented": "2/2",
    }
    assert tally.status("java") == {
        "pods": {"total": 0, "instrumented": 0, "outdated": 0},
        "instrumented": "0/0",
    }
    assert tally.status("never") == tally.status("java")


def test_a_status_lists_only_the_most_frequent_skip_reasons() -> None:
    tally = Tally()
    for number in range(REASONS_LIMIT + 5):
        for copy in range(number + 1):
            tally.judge(f"{number}-{copy}", [("py", f"Reason{number:02d}")])
    skipped = tally.status("py")["pods"]["skipped"]
    assert len(skipped) == REASONS_LIMIT + 1
    assert skipped["Other"] == sum(range(1, 6))  # the five least frequent reasons
    assert f"Reason{REASONS_LIMIT + 4:02d}" in skipped


def test_a_summary_keeps_only_what_coverage_reads() -> None:
    body = _injected_by(policy("py"))
    summary = summarize(body)
    assert summary == PodSummary(
        namespace="apps",
        labels={"app": "web", "libinject.dev/instrumented": "true"},
        injected=(("py", policy("py").spec_hash),),
        skipped=None,
    )
