"""The policy reconciler's pure core: what `kubectl get ipol` and `kubectl describe ipol` show.

Each test feeds raw policy objects and namespaces to `reconcile` and reads the status and events
the operator would write, as a platform engineer would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from builders import JAVA, PYTHON, policy_object
from libinject.api.parse import FieldError, parse_object, parse_policy
from libinject.api.types import PolicyStatus
from libinject.engine.settings import NamespaceSettings
from libinject.status import Event, PolicyObject, Verdict, reconcile

EXAMPLES = Path(__file__).parents[2] / "examples" / "policies"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
NOW_TEXT = "2025-03-01T12:00:00Z"
LATER_TEXT = "2025-03-01T13:00:00Z"
ON = {"libinject.dev/inject": "enabled"}
OFF = {"libinject.dev/inject": "disabled"}
# Three namespaces where injection is enabled (apps, shop, web) and two where it is not.
NAMESPACES = {
    "apps": ON,
    "shop": {**ON, "team": "shop"},
    "web": ON,
    "off": {**OFF, "team": "shop"},
    "plain": {},
}
DIGEST = "sha256:" + "a" * 64


def obj(name: str = "p", *, generation: int = 1, **spec: Any) -> PolicyObject:
    """A policy as the API returns it, without a status yet."""
    return PolicyObject(name, generation, policy_object(name, **spec), {})


def raw(name: str, body: dict[str, Any]) -> PolicyObject:
    return PolicyObject(name, 1, body, {})


def run(
    *policies: PolicyObject,
    namespaces: dict[str, dict[str, str]] = NAMESPACES,
    settings: NamespaceSettings | None = None,
    now: datetime = NOW,
) -> dict[str, Verdict]:
    return reconcile(
        policies, namespaces=namespaces, settings=settings or NamespaceSettings(), now=now
    )


def fed_back(policy: PolicyObject, verdict: Verdict, **changes: Any) -> PolicyObject:
    """The same policy after the operator wrote the verdict's status (and `changes` to spec)."""
    body = policy_object(policy.name, **{**policy.body["spec"], **changes})
    generation = policy.generation + (1 if changes else 0)
    return PolicyObject(policy.name, generation, body, verdict.status)


def condition(verdict: Verdict, kind: str) -> dict[str, Any]:
    return next(c for c in verdict.status["conditions"] if c["type"] == kind)


def ready(verdict: Verdict) -> tuple[str, str]:
    found = condition(verdict, "Ready")
    return found["status"], found["reason"]


def conflicting(verdict: Verdict) -> tuple[str, str]:
    found = condition(verdict, "Conflicting")
    return found["status"], found["reason"]


def event_reasons(verdict: Verdict) -> list[tuple[str, str]]:
    return [(event.type, event.reason) for event in verdict.events]


# --- Ready, matchedNamespaces and languages of valid policies ---------------------------------


@pytest.mark.parametrize(
    ("spec", "count", "languages", "message"),
    [
        pytest.param({}, 3, "python", "injects python into 3 namespaces", id="every-enabled-namespace"),
        pytest.param({"namespaceSelector": {"matchLabels": {"team": "shop"}}}, 1, "python",
                     "injects python into 1 namespace", id="by-labels-singular"),
        pytest.param({"namespaceSelector": {"matchExpressions": [
                         {"key": "team", "operator": "In", "values": ["shop", "bank"]}]}},
                     1, "python", "injects python into 1 namespace", id="by-in-expression"),
        pytest.param({"namespaceSelector": {"matchExpressions": [
                         {"key": "team", "operator": "DoesNotExist"}]}},
                     2, "python", "injects python into 2 namespaces", id="by-does-not-exist"),
        pytest.param({"libraries": [JAVA, PYTHON]}, 3, "java,python",
                     "injects java, python into 3 namespaces", id="languages-in-spec-order"),
        pytest.param({"namespaceSelector": {"matchNames": ["plain", "off", "gone"]}}, 0, "python",
                     "valid, but injects python into no namespace yet: its namespaceSelector "
                     "selects no namespace where injection is enabled", id="no-enabled-namespace"),
    ],
)  # fmt: skip
def test_valid_policy_is_ready_and_counts_the_enabled_namespaces_it_selects(
    spec: dict[str, Any], count: int, languages: str, message: str
) -> None:
    """Ready=True/Valid whatever the count; the message and the columns say what it does."""
    verdict = run(obj(**spec))["p"]
    assert ready(verdict) == ("True", "Valid")
    assert condition(verdict, "Ready")["message"] == message
    assert verdict.status["matchedNamespaces"] == count
    assert verdict.status["languages"] == languages


@pytest.mark.parametrize(
    ("spec", "mutate_unlabelled", "count"),
    [
        pytest.param({}, False, 1, id="only-opted-in"),
        pytest.param({}, True, 3, id="unlabelled-with-setting"),
        pytest.param({"namespaceSelector": {"matchNames": ["apps", "bare", "maybe", "off",
                      "kube-system", "libinject-system"]}}, False, 1, id="naming-them-is-not-enough"),
        pytest.param({"namespaceSelector": {"matchNames": ["apps", "bare", "maybe", "off",
                      "kube-system", "libinject-system"]}}, True, 3, id="named-with-setting"),
    ],
)  # fmt: skip
def test_only_namespaces_the_engine_would_mutate_are_counted(
    spec: dict[str, Any], mutate_unlabelled: bool, count: int
) -> None:
    """Disabled, excluded and the operator's namespaces never count; unlabelled ones (and a label
    value other than `enabled`) count only with mutate_unlabelled."""
    namespaces = {
        "apps": ON,
        "bare": {},
        "maybe": {"libinject.dev/inject": "yes"},
        "off": OFF,
        "kube-system": ON,
        "libinject-system": ON,
    }
    settings = NamespaceSettings(mutate_unlabelled=mutate_unlabelled)
    verdict = run(obj(**spec), namespaces=namespaces, settings=settings)["p"]
    assert verdict.status["matchedNamespaces"] == count


def test_status_has_the_api_shape_the_crd_accepts() -> None:
    """Keys in API order, and the CRD's own status model parses it without an error."""
    verdict = run(obj(generation=4))["p"]
    assert list(verdict.status) == [
        "observedGeneration",
        "matchedNamespaces",
        "languages",
        "conditions",
    ]
    errors: list[FieldError] = []
    parse_object(PolicyStatus, verdict.status, path="status", errors=errors)
    assert errors == []
    assert [c["type"] for c in verdict.status["conditions"]] == ["Ready", "Conflicting"]


def test_observed_generation_is_the_objects_generation_everywhere() -> None:
    """Status and every condition carry it, and follow a spec change."""
    first = obj(generation=7)
    verdict = run(first)["p"]
    assert verdict.status["observedGeneration"] == 7
    assert {c["observedGeneration"] for c in verdict.status["conditions"]} == {7}
    changed = run(fed_back(first, verdict, priority=5), now=LATER)["p"]
    assert changed.status["observedGeneration"] == 8
    assert {c["observedGeneration"] for c in changed.status["conditions"]} == {8}


# --- Invalid policies -------------------------------------------------------------------------


def _bad_spec(spec: Any) -> dict[str, Any]:
    body = policy_object("bad")
    body["spec"] = spec
    return body


@pytest.mark.parametrize(
    ("body", "paths", "languages"),
    [
        pytest.param(_bad_spec({"libraries": [{"language": "go", "version": "1.0.0"}, PYTHON]}),
                     ["spec.libraries[0].language"], "go,python", id="unknown-language"),
        pytest.param(_bad_spec({"libraries": [{"language": "go", "version": "1.0.0"}],
                                "priority": 99999}),
                     ["spec.libraries[0].language", "spec.priority"], "go", id="every-error-listed"),
        pytest.param(_bad_spec({"libraries": [PYTHON], "containerName": ["app"]}),
                     ["spec.containerName"], "python", id="unknown-field"),
        pytest.param(_bad_spec("oops"), ["spec"], None, id="unreadable-spec-no-languages"),
    ],
)  # fmt: skip
def test_a_policy_the_parser_refuses_is_invalid_and_says_where(
    body: dict[str, Any], paths: list[str], languages: str | None
) -> None:
    """Ready=False/Invalid naming every field, a Warning event, no namespaces, and the languages
    column still filled when the raw spec can be read that far."""
    verdict = run(raw("bad", body))["bad"]
    assert ready(verdict) == ("False", "Invalid")
    message = condition(verdict, "Ready")["message"]
    assert all(path in message for path in paths), message
    assert verdict.status["matchedNamespaces"] == 0
    assert verdict.status.get("languages") == languages
    assert conflicting(verdict) == ("False", "NoConflict")
    (event,) = [e for e in verdict.events if e.reason == "PolicyInvalid"]
    assert event.type == "Warning"
    assert event.policy == "bad"
    assert all(path in event.message for path in paths)


@pytest.mark.parametrize(
    ("library", "path"),
    [
        pytest.param({**PYTHON, "allowedVersions": ["2.*"]}, "spec.libraries[0].version",
                     id="version-outside-allowed-pattern"),
        pytest.param({**PYTHON, "allowedVersions": ["3.12.1", "3.11.*"]},
                     "spec.libraries[0].version", id="version-outside-allowed-list"),
        pytest.param({**PYTHON, "image": "reg.example/MyTeam/python:1"}, "spec.libraries[0].image",
                     id="uppercase-repository"),
        pytest.param({**PYTHON, "image": "reg.example/python:"}, "spec.libraries[0].image",
                     id="empty-tag"),
        pytest.param({**PYTHON, "image": "reg.example//python:1"}, "spec.libraries[0].image",
                     id="empty-path-component"),
        pytest.param({**PYTHON, "image": "reg.example/python:1:2"}, "spec.libraries[0].image",
                     id="two-tags"),
    ],
)  # fmt: skip
def test_checks_the_schema_cannot_do_make_the_policy_invalid(
    library: dict[str, Any], path: str
) -> None:
    """The API accepts these (the parser mirrors it), yet the policy contradicts itself or names
    an image no runtime can pull: Ready=False/Invalid naming the field."""
    body = policy_object("odd", libraries=[library])
    parse_policy(body)  # the schema lets it through: only the reconciler can say
    verdict = run(raw("odd", body))["odd"]
    assert ready(verdict) == ("False", "Invalid")
    assert path in condition(verdict, "Ready")["message"]
    assert verdict.status["matchedNamespaces"] == 0
    assert verdict.status["languages"] == "python"
    assert event_reasons(verdict) == [("Warning", "PolicyInvalid")]


@pytest.mark.parametrize(
    "library",
    [
        pytest.param({**PYTHON, "allowedVersions": ["4.*"]}, id="pattern-covers-version"),
        pytest.param({**PYTHON, "allowedVersions": ["4.15.0", "4.16.0"]}, id="listed-exactly"),
        pytest.param({**PYTHON, "allowedVersions": ["*"]}, id="any"),
        pytest.param({**PYTHON, "image": "localhost:5000/libinject/python-ddtrace:4.16.0"},
                     id="image-with-port-and-tag"),
        pytest.param({**PYTHON, "image": f"reg.example/team/py_lib@{DIGEST}"}, id="image-digest"),
        pytest.param({**PYTHON, "image": f"reg.example/py:3.12@{DIGEST}"}, id="image-tag-and-digest"),
        pytest.param({**PYTHON, "image": "python-ddtrace"}, id="image-bare-name"),
    ],
)  # fmt: skip
def test_consistent_libraries_are_valid(library: dict[str, Any]) -> None:
    """The extra checks refuse only what is wrong."""
    verdict = run(obj(libraries=[library]))["p"]
    assert ready(verdict) == ("True", "Valid")


# --- Paused -----------------------------------------------------------------------------------


def test_paused_policy_is_not_ready_but_shows_what_it_would_select() -> None:
    verdict = run(obj(paused=True, libraries=[PYTHON, JAVA]))["p"]
    assert ready(verdict) == ("False", "Paused")
    assert condition(verdict, "Ready")["message"] == "the policy is paused: it injects nothing"
    assert verdict.status["matchedNamespaces"] == 3
    assert verdict.status["languages"] == "python,java"
    assert event_reasons(verdict) == [("Normal", "PolicyPaused")]


def test_languages_of_an_unreadable_policy_fit_the_column() -> None:
    """status.languages has maxLength 128 in the CRD; whatever the raw spec holds is cut."""
    libraries = [{"language": f"{letter * 40}", "version": "1"} for letter in "abcdef"]
    verdict = run(raw("bad", _bad_spec({"libraries": libraries})))["bad"]
    assert len(verdict.status["languages"]) == 128
    assert verdict.status["languages"].startswith("a" * 40 + "," + "b" * 40)
    assert verdict.status["languages"].endswith("...")


def test_an_invalid_paused_policy_is_invalid() -> None:
    """Fixing the policy matters more than knowing it is paused."""
    body = policy_object("bad", paused=True, libraries=[{**PYTHON, "allowedVersions": ["2.*"]}])
    assert ready(run(raw("bad", body))["bad"]) == ("False", "Invalid")


# --- Conflicts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alpha", "beta", "example"),
    [
        pytest.param({}, {}, "apps", id="same-selectors"),
        pytest.param({"namespaceSelector": {"matchNames": ["shop"]}},
                     {"namespaceSelector": {"matchLabels": {"team": "shop"}}}, "shop",
                     id="same-namespace-by-name-and-by-label"),
        pytest.param({"podSelector": {"matchLabels": {"app": "a"}}},
                     {"podSelector": {"matchLabels": {"app": "b"}}}, "apps",
                     id="pod-selectors-not-compared"),
        pytest.param({"priority": 7, "libraries": [JAVA, PYTHON]}, {"priority": 7}, "apps",
                     id="one-of-several-languages"),
    ],
)  # fmt: skip
def test_same_priority_same_language_same_namespace_conflict_on_both_sides(
    alpha: dict[str, Any], beta: dict[str, Any], example: str
) -> None:
    """Each policy names the other, the shared language, the first shared namespace by name and
    the winner (the first name); a Warning event each; Ready stays True since the engine settles
    ties."""
    verdicts = run(obj("alpha", **alpha), obj("beta", **beta))
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        verdict = verdicts[name]
        assert conflicting(verdict) == ("True", "SamePriority")
        message = condition(verdict, "Conflicting")["message"]
        assert f"with {other} for python (e.g. in namespace {example}): alpha wins" in message
        assert "beta wins" not in message
        assert ready(verdict) == ("True", "Valid")
        conflicts = [e for e in verdict.events if e.reason == "PolicyConflict"]
        assert [(e.type, e.policy, e.message) for e in conflicts] == [("Warning", name, message)]


def test_the_example_namespace_is_the_first_by_name_among_many() -> None:
    """Stable across runs, so the message (and the status) does not churn."""
    namespaces = {f"ns-{number:02d}": ON for number in range(30, 0, -1)}
    verdicts = run(obj("alpha"), obj("beta"), namespaces=namespaces)
    assert "(e.g. in namespace ns-01)" in condition(verdicts["alpha"], "Conflicting")["message"]


@pytest.mark.parametrize(
    ("alpha", "beta"),
    [
        pytest.param({}, {"priority": 10}, id="different-priority"),
        pytest.param({}, {"libraries": [JAVA]}, id="different-languages"),
        pytest.param({"namespaceSelector": {"matchNames": ["apps"]}},
                     {"namespaceSelector": {"matchNames": ["web"]}}, id="disjoint-namespaces"),
        pytest.param({"namespaceSelector": {"matchNames": ["off", "plain", "apps"]}},
                     {"namespaceSelector": {"matchNames": ["off", "plain", "web"]}},
                     id="shared-only-where-injection-is-off"),
        pytest.param({}, {"paused": True}, id="other-paused"),
        pytest.param({}, {"priority": "high"}, id="other-invalid"),
    ],
)  # fmt: skip
def test_no_conflict(alpha: dict[str, Any], beta: dict[str, Any]) -> None:
    verdicts = run(obj("alpha", **alpha), obj("beta", **beta))
    for verdict in verdicts.values():
        assert conflicting(verdict) == ("False", "NoConflict")
        assert "PolicyConflict" not in [e.reason for e in verdict.events]


def test_conflict_message_lists_each_rival_with_its_shared_languages() -> None:
    """Languages in the policy's own order; the example is the first shared namespace by name."""
    verdicts = run(
        obj("beta", libraries=[PYTHON, JAVA]),
        obj("alpha", libraries=[JAVA], namespaceSelector={"matchNames": ["web", "shop"]}),
        obj("gamma", libraries=[JAVA, PYTHON], namespaceSelector={"matchNames": ["web"]}),
    )
    assert condition(verdicts["beta"], "Conflicting")["message"] == (
        "same priority 0 with alpha for java (e.g. in namespace shop): alpha wins; "
        "with gamma for python, java (e.g. in namespace web): beta wins. Equal priorities go "
        "to the alphabetically first name; podSelectors are not compared, so the pods they "
        "select may not overlap"
    )


def test_many_rivals_are_counted_after_the_first_five() -> None:
    names = [f"p{number}" for number in range(8)]
    verdicts = run(*(obj(name) for name in names))
    message = condition(verdicts["p0"], "Conflicting")["message"]
    assert all(f"with {name} for python" in message for name in names[1:6])
    assert "p6" not in message
    assert "and 2 more policies" in message


# --- Transitions: times and events ------------------------------------------------------------

SCENARIOS = {
    "valid": [obj("alpha")],
    "no-namespace": [obj("alpha", namespaceSelector={"matchNames": ["plain"]})],
    "invalid": [raw("alpha", _bad_spec({"libraries": [{"language": "go", "version": "1"}]}))],
    "paused": [obj("alpha", paused=True)],
    "conflicting": [obj("alpha"), obj("beta")],
}


@pytest.mark.parametrize("policies", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_steady_state_emits_nothing_and_keeps_every_time(policies: list[PolicyObject]) -> None:
    """Feeding the written status back (an hour later) changes nothing: the reconciler can rerun
    on every namespace event without spamming."""
    first = run(*policies)
    assert all(verdict.events for verdict in first.values())
    again = run(*(fed_back(p, first[p.name]) for p in policies), now=LATER)
    assert {name: verdict.events for name, verdict in again.items()} == dict.fromkeys(first, ())
    assert {name: verdict.status for name, verdict in again.items()} == {
        name: verdict.status for name, verdict in first.items()
    }


def test_new_policy_gets_now_and_only_a_ready_event() -> None:
    """A policy that never had a conflict gets no event about it."""
    verdict = run(obj("alpha"))["alpha"]
    assert {c["lastTransitionTime"] for c in verdict.status["conditions"]} == {NOW_TEXT}
    assert verdict.events == (
        Event("alpha", "Normal", "PolicyReady", "injects python into 3 namespaces"),
    )


@pytest.mark.parametrize(
    ("before", "after", "ready_time", "event"),
    [
        pytest.param({}, {"paused": True}, LATER_TEXT, ("Normal", "PolicyPaused"),
                     id="ready-to-paused-flips"),
        pytest.param({"paused": True}, {"paused": False}, LATER_TEXT, ("Normal", "PolicyReady"),
                     id="paused-to-ready-flips"),
        pytest.param({"paused": True}, {"libraries": [{**PYTHON, "allowedVersions": ["2.*"]}]},
                     NOW_TEXT, ("Warning", "PolicyInvalid"), id="paused-to-invalid-same-status"),
        pytest.param({"libraries": [{**PYTHON, "allowedVersions": ["2.*"]}]},
                     {"libraries": [PYTHON]}, LATER_TEXT, ("Normal", "PolicyReady"),
                     id="invalid-fixed"),
    ],
)  # fmt: skip
def test_ready_transitions(
    before: dict[str, Any], after: dict[str, Any], ready_time: str, event: tuple[str, str]
) -> None:
    """The time moves only when True/False flips; an event whenever (status, reason) changes."""
    first_policy = obj("alpha", **before)
    first = run(first_policy)["alpha"]
    second = run(fed_back(first_policy, first, **after), now=LATER)["alpha"]
    assert condition(second, "Ready")["lastTransitionTime"] == ready_time
    assert condition(second, "Conflicting")["lastTransitionTime"] == NOW_TEXT
    assert event_reasons(second) == [event]


def test_a_message_only_change_is_quiet() -> None:
    """A new namespace updates the count and the message, not the time, and emits nothing."""
    policy = obj("alpha")
    first = run(policy, namespaces={"apps": ON})["alpha"]
    second = run(fed_back(policy, first), namespaces={"apps": ON, "web": ON}, now=LATER)["alpha"]
    assert condition(second, "Ready")["message"] == "injects python into 2 namespaces"
    assert condition(second, "Ready")["lastTransitionTime"] == NOW_TEXT
    assert second.status["matchedNamespaces"] == 2
    assert second.events == ()


def test_a_conflict_that_starts_and_ends_is_announced_both_times() -> None:
    alpha, beta = obj("alpha"), obj("beta", priority=10)
    calm = run(alpha, beta)
    alpha, beta = fed_back(alpha, calm["alpha"]), fed_back(beta, calm["beta"], priority=0)
    tied = run(alpha, beta, now=LATER)
    assert event_reasons(tied["alpha"]) == [("Warning", "PolicyConflict")]
    assert condition(tied["alpha"], "Conflicting")["lastTransitionTime"] == LATER_TEXT
    assert condition(tied["alpha"], "Ready")["lastTransitionTime"] == NOW_TEXT
    alpha, beta = fed_back(alpha, tied["alpha"]), fed_back(beta, tied["beta"], priority=3)
    over = run(alpha, beta, now=LATER + timedelta(hours=1))
    assert event_reasons(over["alpha"]) == [("Normal", "PolicyConflictResolved")]
    assert conflicting(over["alpha"]) == ("False", "NoConflict")


@pytest.mark.parametrize(
    "current",
    [
        pytest.param({"conditions": "junk"}, id="conditions-not-a-list"),
        pytest.param({"conditions": [{"status": "True"}, "x"]}, id="entries-without-type"),
    ],
)
def test_a_malformed_current_status_reads_as_none(current: dict[str, Any]) -> None:
    policy = PolicyObject("alpha", 1, policy_object("alpha"), current)
    verdict = run(policy)["alpha"]
    assert event_reasons(verdict) == [("Normal", "PolicyReady")]
    assert condition(verdict, "Ready")["lastTransitionTime"] == NOW_TEXT


def test_a_kept_condition_without_a_time_gets_now() -> None:
    current = {"conditions": [{"type": "Ready", "status": "True", "reason": "Valid"}]}
    verdict = run(PolicyObject("alpha", 1, policy_object("alpha"), current))["alpha"]
    assert condition(verdict, "Ready")["lastTransitionTime"] == NOW_TEXT
    assert verdict.events == ()


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(datetime(2025, 3, 1, 14, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2))),
                     id="other-zone-with-microseconds"),
        pytest.param(datetime(2025, 3, 1, 12, 0, 0), id="naive-is-utc"),
    ],
)  # fmt: skip
def test_transition_times_are_rfc3339_utc_to_the_second(now: datetime) -> None:
    verdict = run(obj("alpha"), now=now)["alpha"]
    assert condition(verdict, "Ready")["lastTransitionTime"] == NOW_TEXT


# --- The examples -----------------------------------------------------------------------------


def test_the_example_policies_read_as_intended() -> None:
    """python-default, java-default and shop-otel are Ready without a conflict (different
    priorities); nodejs-canary is paused."""
    bodies = [yaml.safe_load(path.read_text()) for path in sorted(EXAMPLES.glob("*.yaml"))]
    policies = [raw(body["metadata"]["name"], body) for body in bodies]
    namespaces = {"shop": {**ON, "team": "shop"}, "staging": ON, "kube-system": ON}
    verdicts = run(*policies, namespaces=namespaces)
    summary = {
        name: (ready(v), conflicting(v)[1], v.status["matchedNamespaces"], v.status["languages"])
        for name, v in verdicts.items()
    }
    assert summary == {
        "java-default": (("True", "Valid"), "NoConflict", 2, "java"),
        "nodejs-canary": (("False", "Paused"), "NoConflict", 1, "nodejs"),
        "python-default": (("True", "Valid"), "NoConflict", 2, "python"),
        "shop-otel": (("True", "Valid"), "NoConflict", 1, "java,python"),
    }


def test_no_policies_no_verdicts() -> None:
    assert run() == {}
