"""The policy reconciler's pure core: every policy and namespace in, each policy's status out.

The Kopf shell watches all InstrumentationPolicy objects and all Namespaces; whenever one of them
changes it calls `reconcile` with everything it holds, writes each `Verdict.status` to the
policy's `.status` and posts `Verdict.events`. What a platform engineer reads there:

- `Ready`: True when the policy is valid and not paused. False with reason `Invalid` (what the
  parser, or a check the CRD schema cannot express, refused, field by field), `Paused`, or
  `ImageUnresolved` (with digests pinned: an image tag of the policy the operator cannot resolve,
  named with why, and what pods get meanwhile: the last known digest, or no library).
- `Conflicting`: True when another policy has the same priority for a shared language in a shared
  injection-enabled namespace. The engine settles such ties by name, so this warns rather than
  blocks: Ready stays True.
- `matchedNamespaces` and `languages`, the `kubectl get` columns.

Eligibility and selection are the engine's own functions, so the status can never disagree with
what the webhook does. No I/O here, and the time is passed in.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from libinject.api.parse import FieldError, InvalidPolicyError, parse_policy
from libinject.api.types import InstrumentationPolicy, Language, NamespaceSelector
from libinject.engine.checks import semantic_errors
from libinject.engine.decision import Code
from libinject.engine.eligibility import namespace_reason
from libinject.engine.index import Namespace, narrowing
from libinject.engine.selectors import selects_namespace
from libinject.engine.settings import LibrarySettings, NamespaceSettings
from libinject.engine.versions import policy_images

READY = "Ready"
CONFLICTING = "Conflicting"
LANGUAGES_LIMIT = 128  # maxLength of status.languages in the CRD
MESSAGE_LIMIT = 32768  # maxLength of a condition's message in the CRD
RIVALS_NAMED = 5  # a conflict message names this many other policies, then counts the rest

# (condition type, reason) -> (event type, event reason), for changes worth an Event.
_EVENTS = {
    (READY, "Valid"): ("Normal", "PolicyReady"),
    (READY, "Invalid"): ("Warning", "PolicyInvalid"),
    (READY, "Paused"): ("Normal", "PolicyPaused"),
    (READY, "ImageUnresolved"): ("Warning", "ImageUnresolved"),
    (CONFLICTING, "SamePriority"): ("Warning", "PolicyConflict"),
    (CONFLICTING, "NoConflict"): ("Normal", "PolicyConflictResolved"),
}


@dataclass(frozen=True)
class PolicyObject:
    """One policy as the API returns it."""

    name: str
    generation: int
    body: Mapping[str, Any]
    status: Mapping[str, Any]  # its current .status ({} if none): kept transition times


@dataclass(frozen=True)
class Event:
    policy: str
    type: str  # "Normal" | "Warning"
    reason: str  # CamelCase
    message: str


@dataclass(frozen=True)
class Verdict:
    status: dict[str, Any]  # the whole desired .status, in API form (camelCase)
    events: tuple[Event, ...]  # one per condition whose (status, reason) changed


@dataclass(frozen=True)
class _Condition:
    """A desired condition, before its transition time is known."""

    type: str
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class _Assessed:
    """What one policy is, before conflicts between policies are looked for."""

    ready: _Condition
    policy: InstrumentationPolicy | None  # None when invalid
    selected: frozenset[str] = frozenset()  # enabled namespaces its namespaceSelector selects
    languages: str | None = None


# rivals[policy][other policy][language] = an example namespace both select
_Rivals = dict[str, dict[str, dict[Language, str]]]
_Ties = Mapping[str, Mapping[Language, str]]  # one policy's entry of _Rivals


def reconcile(
    policies: Sequence[PolicyObject],
    *,
    namespaces: Mapping[str, Mapping[str, str]],
    settings: NamespaceSettings,
    now: datetime,
    libraries: LibrarySettings | None = None,
) -> dict[str, Verdict]:
    """Each policy's desired status and the events its changes deserve, by policy name.

    `namespaces` holds every namespace of the cluster with its labels; `libraries` the registry
    and the digests the operator resolved its policies' images to (None: none are pinned).

    Cost, for P policies and N namespaces: N eligibility checks; per distinct namespaceSelector,
    one selection over the namespaces that can match it (narrowed by name or by a required label
    pair, as the engine's PolicyIndex narrows policies); then, per (priority, language) shared by
    two or more active policies, one pass over their selected namespaces, and one entry per pair
    of policies that share some namespace (namespaces selected by the same policies count once).
    That is O(N + sum of the selected set sizes + tied pairs), never the O(P^2 x N) of comparing
    every pair of policies over every namespace.
    """
    enabled = _EnabledNamespaces(namespaces, settings=settings)
    assessed = {p.name: _assess(p, enabled=enabled, libraries=libraries) for p in policies}
    rivals = _rivals(assessed)
    stamp = _rfc3339(now)
    return {
        p.name: _verdict(p, assessed=assessed[p.name], rivals=rivals.get(p.name, {}), now=stamp)
        for p in policies
    }


class _EnabledNamespaces:
    """The namespaces the engine may mutate, indexed by label pair to narrow selections."""

    def __init__(
        self, namespaces: Mapping[str, Mapping[str, str]], *, settings: NamespaceSettings
    ) -> None:
        self.labels: dict[str, Mapping[str, str]] = {}
        self.by_pair: dict[tuple[str, str], list[str]] = {}
        # Many policies share a selector (the empty one above all): each is evaluated once.
        self._selections: dict[Hashable, frozenset[str]] = {}
        for name, labels in namespaces.items():
            reason = namespace_reason(Namespace(name, labels), settings)
            if reason.code is Code.NAMESPACE_ENABLED:
                self.labels[name] = labels
                for pair in labels.items():
                    self.by_pair.setdefault(pair, []).append(name)

    def selected(self, selector: NamespaceSelector) -> frozenset[str]:
        key = _selector_key(selector)
        found = self._selections.get(key)
        if found is None:
            found = frozenset(
                name
                for name in self._candidates(selector)
                if selects_namespace(selector, name, self.labels[name])
            )
            self._selections[key] = found
        return found

    def _candidates(self, selector: NamespaceSelector) -> Iterable[str]:
        """A superset of what the selector selects, by the engine's own bucketing."""
        keys = narrowing(selector)
        if keys is None:
            return self.labels
        named = (name for name in keys.names if name in self.labels)
        labelled = (name for pair in keys.pairs for name in self.by_pair.get(pair, []))
        return {*named, *labelled}


def _selector_key(selector: NamespaceSelector) -> Hashable:
    # The selector holds a dict (matchLabels), so it is not hashable itself.
    labels = tuple(sorted(selector.match_labels.items()))
    return (selector.match_names, labels, selector.match_expressions)


def _assess(
    policy: PolicyObject, *, enabled: _EnabledNamespaces, libraries: LibrarySettings | None
) -> _Assessed:
    try:
        parsed = parse_policy(policy.body)
    except InvalidPolicyError as error:
        return _invalid(error.errors, languages=_raw_languages(policy.body))
    spec = parsed.spec
    languages = ",".join(library.language.value for library in spec.libraries)
    if errors := semantic_errors(parsed):
        return _invalid(errors, languages=languages)
    selected = enabled.selected(spec.namespace_selector)
    if spec.paused:
        paused = _Condition(READY, False, "Paused", "the policy is paused: it injects nothing")
        return _Assessed(paused, parsed, selected, languages)
    unresolved = _unresolved(parsed, libraries)
    if unresolved is not None:
        return _Assessed(unresolved, parsed, selected, languages)
    return _Assessed(_ready(parsed, count=len(selected)), parsed, selected, languages)


def _unresolved(
    policy: InstrumentationPolicy, libraries: LibrarySettings | None
) -> _Condition | None:
    """Ready=False naming each of the policy's image tags the operator cannot resolve to a
    digest, and what pods get meanwhile; None when every one resolves (or none is pinned)."""
    if libraries is None or libraries.digests is None:
        return None
    failures = []
    for image in policy_images(policy, registry=libraries.registry):
        known = libraries.digests.get(image)
        if known is None or known.error is None:
            continue
        meanwhile = (
            f"pods get the last known digest {known.digest}"
            if known.digest
            else "pods get no library for it until it resolves"
        )
        failures.append(f"{image} cannot be resolved to a digest ({known.error}): {meanwhile}")
    if not failures:
        return None
    return _Condition(READY, False, "ImageUnresolved", "; ".join(failures))


def _invalid(errors: Sequence[FieldError], *, languages: str | None) -> _Assessed:
    listing = "; ".join(str(error) for error in errors)
    message = f"the policy is invalid and injects nothing: {listing}"
    return _Assessed(_Condition(READY, False, "Invalid", message), None, languages=languages)


def _ready(policy: InstrumentationPolicy, *, count: int) -> _Condition:
    names = ", ".join(library.language.value for library in policy.spec.libraries)
    if count == 0:
        message = (
            f"valid, but injects {names} into no namespace yet: its namespaceSelector selects "
            "no namespace where injection is enabled"
        )
    else:
        message = f"injects {names} into {count} namespace{'' if count == 1 else 's'}"
    return _Condition(READY, True, "Valid", message)


def _raw_languages(body: Mapping[str, Any]) -> str | None:
    """The languages an unparseable policy names, when its spec can be read that far."""
    spec = body.get("spec")
    libraries = spec.get("libraries") if isinstance(spec, Mapping) else None
    if not isinstance(libraries, list):
        return None
    names = [
        library["language"]
        for library in libraries
        if isinstance(library, Mapping) and isinstance(library.get("language"), str)
    ]
    return _clip(",".join(names), LANGUAGES_LIMIT) if names else None


def _rivals(assessed: Mapping[str, _Assessed]) -> _Rivals:
    """Pairs of active policies that tie: same priority, a shared language, a shared namespace.

    Policies are grouped by (priority, language); only groups of two or more are looked into.
    Within a group, namespaces selected by the same set of policies are collapsed into one
    (the alphabetically first serves as the example), so each pair is recorded once per set
    rather than once per namespace.
    """
    groups: dict[tuple[int, Language], list[str]] = {}
    for name in sorted(assessed):
        policy = assessed[name].policy
        if policy is None or policy.spec.paused:
            continue
        for library in policy.spec.libraries:
            groups.setdefault((policy.spec.priority, library.language), []).append(name)
    rivals: _Rivals = {}
    for (_, language), members in groups.items():
        if len(members) > 1:
            _record_ties(members, language=language, assessed=assessed, rivals=rivals)
    return rivals


def _record_ties(
    members: Sequence[str],
    *,
    language: Language,
    assessed: Mapping[str, _Assessed],
    rivals: _Rivals,
) -> None:
    selecting: dict[str, list[str]] = {}
    for name in members:  # sorted, so each list below is too
        for namespace in assessed[name].selected:
            selecting.setdefault(namespace, []).append(name)
    examples: dict[tuple[str, ...], str] = {}
    for namespace, selectors in selecting.items():
        if len(selectors) > 1:
            key = tuple(selectors)
            examples[key] = min(examples.get(key, namespace), namespace)
    for tied, namespace in examples.items():
        for name in tied:
            for other in tied:
                if other != name:
                    found = rivals.setdefault(name, {}).setdefault(other, {})
                    found[language] = min(found.get(language, namespace), namespace)


def _conflicting(assessed: _Assessed, *, name: str, rivals: _Ties) -> _Condition:
    policy = assessed.policy
    if policy is None or policy.spec.paused:
        why = "invalid" if policy is None else "paused"
        message = f"the policy is {why}, so it competes with no other policy"
        return _Condition(CONFLICTING, False, "NoConflict", message)
    if not rivals:
        message = "no other policy has the same priority for a language in a namespace it selects"
        return _Condition(CONFLICTING, False, "NoConflict", message)
    return _Condition(
        CONFLICTING, True, "SamePriority", _tie_message(policy, name=name, rivals=rivals)
    )


def _tie_message(policy: InstrumentationPolicy, *, name: str, rivals: _Ties) -> str:
    order = [library.language for library in policy.spec.libraries]
    parts = []
    for other in sorted(rivals)[:RIVALS_NAMED]:
        shared = rivals[other]
        languages = ", ".join(lang.value for lang in order if lang in shared)
        winner = min(name, other)
        parts.append(
            f"with {other} for {languages} (e.g. in namespace {min(shared.values())}): "
            f"{winner} wins"
        )
    if len(rivals) > RIVALS_NAMED:
        parts.append(f"and {len(rivals) - RIVALS_NAMED} more policies")
    return (
        f"same priority {policy.spec.priority} " + "; ".join(parts) + ". Equal priorities go to "
        "the alphabetically first name; podSelectors are not compared, so the pods they select "
        "may not overlap"
    )


def _verdict(policy: PolicyObject, *, assessed: _Assessed, rivals: _Ties, now: str) -> Verdict:
    desired = [assessed.ready, _conflicting(assessed, name=policy.name, rivals=rivals)]
    current = _current_conditions(policy.status)
    conditions = [
        _render(c, previous=current.get(c.type), generation=policy.generation, now=now)
        for c in desired
    ]
    events = tuple(
        event
        for c in desired
        if (event := _event(c, policy=policy.name, previous=current.get(c.type))) is not None
    )
    status: dict[str, Any] = {
        "observedGeneration": policy.generation,
        "matchedNamespaces": len(assessed.selected),
    }
    if assessed.languages is not None:
        status["languages"] = assessed.languages
    status["conditions"] = conditions
    return Verdict(status, events)


def _current_conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The current conditions by type; anything malformed is ignored, as if absent."""
    found = status.get("conditions")
    if not isinstance(found, list):
        return {}
    return {
        c["type"]: c for c in found if isinstance(c, Mapping) and isinstance(c.get("type"), str)
    }


def _render(
    condition: _Condition, *, previous: Mapping[str, Any] | None, generation: int, now: str
) -> dict[str, Any]:
    status = _status_text(condition.status)
    # Kubernetes convention: the time moves only when the status value itself flips.
    kept = previous.get("lastTransitionTime") if previous else None
    unchanged = previous is not None and previous.get("status") == status
    return {
        "type": condition.type,
        "status": status,
        "reason": condition.reason,
        "message": _clip(condition.message, MESSAGE_LIMIT),
        "lastTransitionTime": kept if unchanged and isinstance(kept, str) else now,
        "observedGeneration": generation,
    }


def _event(
    condition: _Condition, *, policy: str, previous: Mapping[str, Any] | None
) -> Event | None:
    """An Event when the condition's (status, reason) changed; message-only changes are quiet."""
    status = _status_text(condition.status)
    if previous is not None and (previous.get("status"), previous.get("reason")) == (
        status,
        condition.reason,
    ):
        return None
    # The end of a conflict is news; a policy that never had one is not.
    was_conflicting = previous is not None and previous.get("status") == "True"
    if condition.type == CONFLICTING and not condition.status and not was_conflicting:
        return None
    kind, reason = _EVENTS[(condition.type, condition.reason)]
    return Event(policy, kind, reason, _clip(condition.message, MESSAGE_LIMIT))


def _status_text(value: bool) -> str:
    return "True" if value else "False"


def _rfc3339(moment: datetime) -> str:
    """UTC, to the second, with Z (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
