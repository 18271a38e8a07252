"""Policy choice per language, and the verdict on every other policy for `explain`."""

from __future__ import annotations

from collections.abc import Mapping

from libinject.api.types import InstrumentationPolicy, Language, LibrarySpec
from libinject.engine.decision import Code, LanguageDecision, PolicyVerdict, Reason
from libinject.engine.index import Namespace, NamespacePlan, PolicyIndex
from libinject.engine.selectors import describe_selector, selects, selects_namespace


def library_of(policy: InstrumentationPolicy, language: Language) -> LibrarySpec:
    return next(lib for lib in policy.spec.libraries if lib.language is language)


def choose(
    plan: NamespacePlan, pod_labels: Mapping[str, str]
) -> dict[Language, InstrumentationPolicy]:
    """Per language, the first (best-ranked) policy of the plan whose pod selector matches."""
    winners = {}
    for language, policies in plan.by_language.items():
        for policy in policies:
            if selects(policy.spec.pod_selector, pod_labels):
                winners[language] = policy
                break
    return winners


def explain_candidates(
    index: PolicyIndex,
    *,
    namespace: Namespace,
    pod_labels: Mapping[str, str],
    winners: Mapping[Language, InstrumentationPolicy],
) -> list[LanguageDecision]:
    """Every language any policy names, with a verdict on every policy that names it."""
    languages = sorted({lib.language for p in index.policies for lib in p.spec.libraries})
    decisions = []
    for language in languages:
        winner = winners.get(language)
        verdicts = tuple(
            PolicyVerdict(p.name, p.spec.priority, _verdict(p, namespace, pod_labels, winner))
            for p in index.policies
            if any(lib.language is language for lib in p.spec.libraries)
        )
        reason = None if winner else Reason(Code.NO_MATCHING_POLICY, "no policy selects this pod")
        decisions.append(LanguageDecision(language, None, verdicts, reason))
    return decisions


def _verdict(
    policy: InstrumentationPolicy,
    namespace: Namespace,
    pod_labels: Mapping[str, str],
    winner: InstrumentationPolicy | None,
) -> Reason:
    spec = policy.spec
    if spec.paused:
        return Reason(Code.POLICY_PAUSED, "the policy is paused")
    if not selects_namespace(spec.namespace_selector, namespace.name, namespace.labels):
        wanted = describe_selector(spec.namespace_selector)
        return Reason(
            Code.NAMESPACE_NOT_SELECTED, f"namespace {namespace.name} does not match {wanted}"
        )
    if not selects(spec.pod_selector, pod_labels):
        wanted = describe_selector(spec.pod_selector)
        return Reason(Code.POD_NOT_SELECTED, f"pod labels do not match {wanted}")
    if winner is not None and winner.name != policy.name:
        return Reason(
            Code.LOWER_PRIORITY,
            f"{winner.name} wins (priority {winner.spec.priority} vs {spec.priority}; "
            "equal priorities go to the first name)",
        )
    return Reason(Code.SELECTED, f"selected (priority {spec.priority})")
