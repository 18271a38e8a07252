"""How many pods each policy covers, and in what state: the pure core of a policy's
`status.pods` and of the `kubectl get ipol` column `Instrumented` (instrumented/total).

A pod counts for each policy that wins one of its languages now, by the engine's own selection
(namespace eligibility, namespaceSelector, podSelector, priority), so the counts can never
disagree with what the webhook would do with the pod today. For that policy it is:
- instrumented: its record (libinject.dev/injected) names the policy at the spec it has now;
- outdated: its record names the policy at an older spec (the policy changed since), or the pod
  was admitted before the policy won it: no record of the policy and no skip that says why
  (another policy's record, "no policy selected it", or no record at all: created while the
  webhook was not called). Restarting the pod gets it the current spec;
- skipped, by the reason its skip record gives (the pod opted out, a copy container too small,
  ...): restarting it would change nothing.
Pods that are finished (Succeeded, Failed) or being deleted count for none. No I/O here.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libinject.api.types import InstrumentationPolicy, Language
from libinject.engine.choice import choose
from libinject.engine.decision import Code
from libinject.engine.eligibility import namespace_reason
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import INJECTED_ANNOTATION, SKIPPED_ANNOTATION
from libinject.engine.selectors import interned
from libinject.engine.settings import NamespaceSettings

INSTRUMENTED = "instrumented"
OUTDATED = "outdated"
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
_CODES = {code.value: code.value for code in Code}
REASONS_LIMIT = 20  # skip reasons listed in a status; the rest are summed under "Other"


@dataclass(frozen=True, slots=True)
class PodSummary:
    """What coverage reads of a pod: a few hundred bytes, where its body is kilobytes."""

    namespace: str
    labels: Mapping[str, str]
    # (policy, spec hash) of each library of its record: a tuple, a third of a frozenset's size
    injected: tuple[tuple[str, str], ...]
    skipped: str | None  # the reason code of its skip record


def summarize(pod: Mapping[str, Any]) -> PodSummary | None:
    """The pod as coverage counts it; None for a pod that counts for no policy (finished, being
    deleted) or that is no pod."""
    metadata = pod.get("metadata")
    status = pod.get("status")
    if not isinstance(metadata, Mapping) or metadata.get("deletionTimestamp"):
        return None
    if isinstance(status, Mapping) and status.get("phase") in FINISHED_PHASES:
        return None
    labels = metadata.get("labels")
    annotations = metadata.get("annotations")
    annotations = annotations if isinstance(annotations, Mapping) else {}
    return PodSummary(
        namespace=sys.intern(str(metadata.get("namespace") or "")),
        labels=interned(labels if isinstance(labels, Mapping) else {}),
        injected=_record(annotations.get(INJECTED_ANNOTATION)),
        skipped=_skip_code(annotations.get(SKIPPED_ANNOTATION)),
    )


def _record(text: Any) -> tuple[tuple[str, str], ...]:
    """(policy, spec hash) of each library in a record; a record that cannot be read names none
    (the pod counts as admitted before the policy, which a restart settles)."""
    try:
        entries = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return ()
    found = {
        (sys.intern(str(entry.get("policy"))), sys.intern(str(entry.get("specHash", ""))))
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    }
    return tuple(sorted(found))


def _skip_code(text: Any) -> str | None:
    """The code of a skip record (`Code: message`), when it is one of the engine's: a pod's
    author may write anything there before the webhook overwrites it."""
    if not isinstance(text, str):
        return None
    code = text.partition(":")[0].strip()
    return _CODES.get(code)


def winners(
    pod: PodSummary,
    *,
    index: PolicyIndex,
    namespaces: Mapping[str, Mapping[str, str]],
    settings: NamespaceSettings,
) -> Mapping[Language, InstrumentationPolicy]:
    """The policy that wins each language for the pod now, as the webhook would choose."""
    namespace = Namespace(pod.namespace, namespaces.get(pod.namespace, {}))
    if namespace_reason(namespace, settings).code is not Code.NAMESPACE_ENABLED:
        return {}
    return choose(index.plan(namespace), pod.labels)


def states(
    pod: PodSummary, chosen: Mapping[Language, InstrumentationPolicy]
) -> tuple[tuple[str, str], ...]:
    """(policy, state) for each policy that wins a language of the pod."""
    named = {policy for policy, _ in pod.injected}
    found = {}
    for policy in chosen.values():
        if (policy.name, policy.spec_hash) in pod.injected:
            found[policy.name] = INSTRUMENTED
        elif policy.name in named or pod.skipped in (None, Code.NO_MATCHING_POLICY):
            found[policy.name] = OUTDATED
        else:
            found[policy.name] = pod.skipped or OUTDATED
    return tuple(sorted(found.items()))


class Tally:
    """Each policy's counts, kept as pods are judged: judging a pod again takes its old states
    out first, so a change costs that pod alone."""

    def __init__(self) -> None:
        self._states: dict[Hashable, tuple[tuple[str, str], ...]] = {}
        self._counts: dict[str, Counter[str]] = {}

    def judge(self, pod: Hashable, found: Iterable[tuple[str, str]]) -> None:
        """`pod`'s states now (none: it counts for no policy, or is gone)."""
        self._add(self._states.pop(pod, ()), -1)
        new = tuple(found)
        if new:
            self._states[pod] = new
        self._add(new, 1)

    def _add(self, found: Iterable[tuple[str, str]], step: int) -> None:
        for policy, state in found:
            counts = self._counts.setdefault(policy, Counter())
            counts[state] += step
            if counts[state] == 0:
                del counts[state]
            if not counts:
                del self._counts[policy]

    def status(self, policy: str) -> dict[str, Any]:
        """`status.pods` and `status.instrumented` of one policy."""
        counts = self._counts.get(policy, Counter())
        skipped = {s: n for s, n in counts.items() if s not in (INSTRUMENTED, OUTDATED)}
        total = sum(counts.values())
        pods: dict[str, Any] = {
            "total": total,
            "instrumented": counts[INSTRUMENTED],
            "outdated": counts[OUTDATED],
        }
        if skipped:
            pods["skipped"] = _limited(skipped)
        return {"pods": pods, "instrumented": f"{counts[INSTRUMENTED]}/{total}"}


def _limited(skipped: dict[str, int]) -> dict[str, int]:
    """The most frequent reasons, the others summed: a status stays small whatever pods say."""
    ranked = sorted(skipped.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:REASONS_LIMIT])
    rest = sum(n for _, n in ranked[REASONS_LIMIT:])
    if rest:
        kept["Other"] = kept.get("Other", 0) + rest
    return kept
